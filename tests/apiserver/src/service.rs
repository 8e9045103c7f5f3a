//! The in-process front door: a `tower::Service` over HTTP requests, which
//! `kube::Client::new(service, "default")` accepts. No sockets, no TLS: a
//! request's body is collected and handed to the router, the response (or
//! the watch stream) comes straight back.

use std::convert::Infallible;
use std::fmt::Display;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use http_body_util::BodyExt;

use crate::error::ApiError;
use crate::router::{self, Backend, ResponseBody};

/// A cloneable handle that serves requests from one [`Backend`].
#[derive(Debug, Clone)]
pub struct ApiService {
    backend: Arc<Backend>,
}

impl ApiService {
    pub fn new(backend: Arc<Backend>) -> Self {
        ApiService { backend }
    }
}

impl<B> tower::Service<Request<B>> for ApiService
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Display,
{
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let backend = self.backend.clone();
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let body = match body.collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(e) => {
                    let error =
                        ApiError::BadRequest(format!("could not read the request body: {e}"));
                    return Ok(router::error_response(&error));
                }
            };
            Ok(router::handle(backend, parts.method, parts.uri, parts.headers, body).await)
        })
    }
}
