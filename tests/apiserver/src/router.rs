//! HTTP routing: turns one request (method, path, query, headers, body) into
//! store calls and renders the answer, JSON in and JSON out, errors as
//! `kind: Status`. Both front doors ([`crate::service`] in-process and
//! [`crate::http`] on a TCP port) call [`handle`].
//!
//! ```text
//! request ─► route::parse ─► resource type lookup ─► verb ─► request log / faults / latency
//!         ─► store (get, list, watch, create, update, patch, delete) ─► JSON or watch stream
//! ```

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Response, StatusCode, Uri, header};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::hooks::{Faults, RequestLog, RequestRecord};
use crate::patch::PatchKind;
use crate::resources::ResourceType;
use crate::route::{ResourcePath, Route};
use crate::selector::{FieldSelector, LabelSelector, Selectors};
use crate::store::{DeletePreconditions, ListOptions, PatchRequest, Store, WriteMode};

/// The body type of every response (a full JSON document or a watch stream).
pub type ResponseBody = UnsyncBoxBody<Bytes, Infallible>;

/// Everything a request handler needs: the store and the test hooks.
#[derive(Debug)]
pub struct Backend {
    pub store: Arc<Store>,
    pub faults: Faults,
    pub requests: RequestLog,
    /// How often an idle watch that asked for bookmarks gets one.
    pub bookmark_interval: Duration,
}

impl Backend {
    pub fn new(store: Arc<Store>) -> Self {
        Backend {
            store,
            faults: Faults::default(),
            requests: RequestLog::default(),
            bookmark_interval: Duration::from_secs(1),
        }
    }
}

/// The query string as a map (last value wins).
pub type Query = HashMap<String, String>;

/// Handles one request.
pub async fn handle(
    backend: Arc<Backend>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response<ResponseBody> {
    let path = uri.path().to_owned();
    let query_text = uri.query().unwrap_or("").to_owned();
    let query: Query = form_urlencoded::parse(query_text.as_bytes())
        .into_owned()
        .collect();
    let route = crate::route::parse(&path);
    let mut record = RequestRecord {
        method: method.to_string(),
        path,
        query: query_text,
        verb: "discovery".to_owned(),
        resource: None,
        namespace: None,
        name: None,
        subresource: None,
        status: 0,
        content_type: headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned(),
    };
    if let Route::Resource(rp) = &route {
        record.verb = verb_of(&method, rp, &query).to_owned();
        record.resource = Some(rp.plural.clone());
        record.namespace = rp.namespace.clone();
        record.name = rp.name.clone();
        record.subresource = rp.subresource.clone();
    }
    let latency = backend.faults.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let response = match backend
        .faults
        .take(record.resource.as_deref(), &record.verb)
    {
        Some(injected) => error_response(&injected),
        None => dispatch(&backend, &method, route, &query, &headers, &body)
            .unwrap_or_else(|e| error_response(&e)),
    };
    record.status = response.status().as_u16();
    backend.requests.push(record);
    response
}

fn verb_of(method: &Method, rp: &ResourcePath, query: &Query) -> &'static str {
    let named = rp.name.is_some();
    match *method {
        Method::GET if named => "get",
        Method::GET if is_true(query.get("watch")) => "watch",
        Method::GET => "list",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if named => "delete",
        Method::DELETE => "deletecollection",
        _ => "unknown",
    }
}

fn is_true(v: Option<&String>) -> bool {
    matches!(v.map(String::as_str), Some("true" | "1"))
}

fn dispatch(
    backend: &Arc<Backend>,
    method: &Method,
    route: Route,
    query: &Query,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Response<ResponseBody>, ApiError> {
    let store = &backend.store;
    let discovery_only = |doc: Option<Value>| -> Result<Response<ResponseBody>, ApiError> {
        if *method != Method::GET {
            return Err(ApiError::MethodNotAllowed(format!(
                "{method} is not allowed on discovery endpoints"
            )));
        }
        doc.map(|d| json_response(StatusCode::OK, &d))
            .ok_or_else(|| ApiError::UnknownResource("no such API group or version".to_owned()))
    };
    match route {
        Route::Version => discovery_only(Some(crate::discovery::version())),
        Route::Health => Ok(text_response(StatusCode::OK, "ok")),
        Route::CoreVersions => discovery_only(Some(crate::discovery::core_versions())),
        Route::GroupList => discovery_only(Some(crate::discovery::group_list(&store.registry()))),
        Route::Group { group } => {
            discovery_only(crate::discovery::group(&store.registry(), &group))
        }
        Route::ResourceList { group, version } => discovery_only(crate::discovery::resource_list(
            &store.registry(),
            &group,
            &version,
        )),
        Route::OpenApiV3Root => discovery_only(Some(crate::openapi::v3_root(&store.registry()))),
        Route::OpenApiV3 { group, version } => discovery_only(crate::openapi::v3_group_version(
            &store.registry(),
            &group,
            &version,
        )),
        Route::OpenApiV2 => {
            let accept = headers
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let (content_type, body) = crate::openapi::v2_document(accept);
            Ok(bytes_response(StatusCode::OK, content_type, body))
        }
        Route::NotFound => Err(ApiError::UnknownResource(format!(
            "{method} on an unknown path"
        ))),
        Route::Resource(rp) => resource_request(backend, method, rp, query, headers, body),
    }
}

fn resource_request(
    backend: &Arc<Backend>,
    method: &Method,
    rp: ResourcePath,
    query: &Query,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Response<ResponseBody>, ApiError> {
    let store = &backend.store;
    let rt = store
        .resource_type(&rp.group, &rp.version, &rp.plural)
        .ok_or_else(|| {
            ApiError::UnknownResource(format!(
                "no resource `{}` in group version `{}/{}`",
                rp.plural, rp.group, rp.version
            ))
        })?;
    if rp.namespace.is_some() && !rt.namespaced {
        return Err(ApiError::UnknownResource(format!(
            "{} is cluster-scoped; drop the namespace from the URL",
            rt.plural
        )));
    }
    if rp.name.is_some() && rt.namespaced && rp.namespace.is_none() {
        return Err(ApiError::UnknownResource(format!(
            "{} is namespaced; address a single object as .../namespaces/<namespace>/{}/<name>",
            rt.plural, rt.plural
        )));
    }
    if rp.subresource.as_deref() == Some("scale")
        && crate::scale::has_scale(&rt)
        && rp.name.is_some()
    {
        return crate::scale::request(store, method, &rt, &rp, query, headers, body);
    }
    let mode = match rp.subresource.as_deref() {
        None => WriteMode::Main,
        Some("status") if rt.status_subresource => WriteMode::Status,
        Some(other) => {
            return Err(ApiError::UnknownResource(format!(
                "{} has no subresource `{other}`",
                rt.plural
            )));
        }
    };
    let ns = rp.namespace.as_deref();
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let representation = crate::representation::Representation::from_accept(accept);
    let dry_run = query.get("dryRun").is_some_and(|v| v == "All");
    match (method.clone(), rp.name.as_deref()) {
        (Method::GET, Some(name)) => {
            let stored = rt.present(store.get(&rt, ns, name)?);
            let obj = crate::schema::defaulted_on_read(&rt, &stored);
            match representation.object(&rt, &obj) {
                Some(shaped) => Ok(json_response(StatusCode::OK, &shaped)),
                None => Ok(json_response(StatusCode::OK, &obj)),
            }
        }
        (Method::GET, None) => {
            let selectors = selectors(query)?;
            if is_true(query.get("watch")) {
                return crate::watch::start(backend, &rt, ns, selectors, query, representation);
            }
            let opts = ListOptions {
                selectors,
                limit: parse_number(query, "limit")?.map(|l| l as usize),
                continue_token: query.get("continue").filter(|c| !c.is_empty()).cloned(),
            };
            let mut page = store.list(&rt, ns, &opts)?;
            for item in &mut page.items {
                *item = rt.present(item.clone());
            }
            if rt.schema.is_some() {
                for item in &mut page.items {
                    if let std::borrow::Cow::Owned(defaulted) =
                        crate::schema::defaulted_on_read(&rt, item)
                    {
                        *item = std::sync::Arc::new(defaulted);
                    }
                }
            }
            let items: Vec<&Value> = page.items.iter().map(|o| o.as_ref()).collect();
            match representation.list(&rt, &items, list_metadata(&page)) {
                Some(shaped) => Ok(json_response(StatusCode::OK, &shaped)),
                None => Ok(list_response(&rt, &page)),
            }
        }
        (Method::POST, None) => {
            let obj = parse_json(body, &rt, "create", headers)?;
            let warnings = field_validation(&rt, &obj, query)?;
            let created = rt.present(store.create(&rt, ns, obj, dry_run)?);
            Ok(with_warnings(
                json_response(StatusCode::CREATED, &created),
                &warnings,
            ))
        }
        (Method::PUT, Some(name)) => {
            let obj = parse_json(body, &rt, "update", headers)?;
            let warnings = field_validation(&rt, &obj, query)?;
            let updated = rt.present(store.update(&rt, ns, name, obj, mode, dry_run)?);
            Ok(with_warnings(
                json_response(StatusCode::OK, &updated),
                &warnings,
            ))
        }
        (Method::PATCH, Some(name)) => {
            let content_type = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let kind = PatchKind::from_content_type(content_type)?;
            let patch = crate::patch::parse_body(kind, body)?;
            let warnings = if kind == PatchKind::Json {
                Vec::new()
            } else {
                field_validation(&rt, &patch, query)?
            };
            let manager = query.get("fieldManager").map(String::as_str);
            let request = PatchRequest {
                kind,
                body: &patch,
                mode,
                field_manager: manager,
                force: is_true(query.get("force")),
                dry_run,
            };
            let patched = rt.present(store.patch(&rt, ns, name, &request)?);
            Ok(with_warnings(
                json_response(StatusCode::OK, &patched),
                &warnings,
            ))
        }
        (Method::DELETE, Some(name)) => {
            let (preconditions, body_dry_run) = delete_options(body)?;
            let deleted =
                rt.present(store.delete(&rt, ns, name, &preconditions, dry_run || body_dry_run)?);
            if crate::meta::is_deleting(&deleted) && crate::meta::has_finalizers(&deleted) {
                return Ok(json_response(StatusCode::ACCEPTED, &deleted));
            }
            if rt.defined_by_crd.is_some() {
                return Ok(json_response(StatusCode::OK, &deleted));
            }
            Ok(json_response(
                StatusCode::OK,
                &success_status(&rt, &deleted),
            ))
        }
        (Method::DELETE, None) => {
            let (preconditions, body_dry_run) = delete_options(body)?;
            let opts = ListOptions {
                selectors: selectors(query)?,
                ..ListOptions::default()
            };
            let page = store.list(&rt, ns, &opts)?;
            let mut deleted = Vec::new();
            for obj in &page.items {
                let obj_ns = Some(crate::meta::namespace(obj)).filter(|n| !n.is_empty());
                match store.delete(
                    &rt,
                    obj_ns,
                    crate::meta::name(obj),
                    &preconditions,
                    dry_run || body_dry_run,
                ) {
                    Ok(d) => deleted.push(rt.present(d)),
                    // Deleted concurrently: nothing left to do for this one.
                    Err(ApiError::NotFound { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            let page = crate::store::ListPage {
                items: deleted,
                resource_version: store.revision(),
                continue_token: None,
                remaining: None,
            };
            Ok(list_response(&rt, &page))
        }
        (m, _) => Err(ApiError::MethodNotAllowed(format!(
            "{m} is not allowed on {} {}",
            rt.plural,
            if rp.name.is_some() {
                "objects"
            } else {
                "collections"
            }
        ))),
    }
}

fn selectors(query: &Query) -> Result<Selectors, ApiError> {
    Ok(Selectors {
        labels: LabelSelector::parse(query.get("labelSelector").map(String::as_str).unwrap_or(""))?,
        fields: FieldSelector::parse(query.get("fieldSelector").map(String::as_str).unwrap_or(""))?,
    })
}

pub(crate) fn parse_number(query: &Query, key: &str) -> Result<Option<u64>, ApiError> {
    match query.get(key).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| {
            ApiError::BadRequest(format!(
                "query parameter `{key}`: `{v}` is not a non-negative integer"
            ))
        }),
    }
}

fn parse_json(
    body: &Bytes,
    rt: &ResourceType,
    verb: &str,
    headers: &HeaderMap,
) -> Result<Value, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if crate::protobuf::is_protobuf(content_type) {
        return crate::protobuf::decode_object(body, rt, verb);
    }
    if content_type.starts_with("application/vnd.kubernetes.protobuf")
        || content_type.starts_with("application/cbor")
    {
        return Err(ApiError::UnsupportedMediaType(format!(
            "{verb} {}: this test API server reads JSON and Kubernetes protobuf bodies, not `{content_type}`",
            rt.kind
        )));
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::BadRequest(format!(
            "{verb} {}: the request body is not valid JSON: {e}",
            rt.kind
        ))
    })
}

/// `fieldValidation` for custom resources: fields the CRD schema does not
/// declare are pruned on write; `Strict` (what kubectl sends) refuses them
/// with 400 as the real server's strict decoder does, `Ignore` says nothing,
/// and the default `Warn` returns one `Warning` header per field.
fn field_validation(
    rt: &ResourceType,
    obj: &Value,
    query: &Query,
) -> Result<Vec<String>, ApiError> {
    let Some(schema) = rt.schema.as_deref() else {
        return Ok(Vec::new());
    };
    let unknown: Vec<String> = crate::schema::unknown_fields(schema, obj)
        .into_iter()
        .map(|f| format!("unknown field \"{}\"", f.trim_start_matches('.')))
        .collect();
    match query.get("fieldValidation").map(String::as_str) {
        _ if unknown.is_empty() => Ok(Vec::new()),
        Some("Strict") => Err(ApiError::BadRequest(format!(
            "{kind} in version \"{version}\" cannot be handled as a {kind}: strict decoding error: {}",
            unknown.join(", "),
            kind = rt.kind,
            version = rt.version,
        ))),
        Some("Ignore") => Ok(Vec::new()),
        _ => Ok(unknown),
    }
}

/// Adds `Warning: 299 - "..."` headers, as the real server reports dropped fields.
fn with_warnings(
    mut response: Response<ResponseBody>,
    warnings: &[String],
) -> Response<ResponseBody> {
    for warning in warnings {
        let text = format!("299 - {}", serde_json::Value::String(warning.clone()));
        if let Ok(value) = http::HeaderValue::from_str(&text) {
            response.headers_mut().append(http::header::WARNING, value);
        }
    }
    response
}

fn delete_options(body: &Bytes) -> Result<(DeletePreconditions, bool), ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok((DeletePreconditions::default(), false));
    }
    let opts: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("DeleteOptions body is not valid JSON: {e}")))?;
    let text = |path: &str| {
        opts.pointer(path)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let dry_run = opts
        .get("dryRun")
        .and_then(Value::as_array)
        .is_some_and(|a| a.iter().any(|v| v == "All"));
    Ok((
        DeletePreconditions {
            uid: text("/preconditions/uid"),
            resource_version: text("/preconditions/resourceVersion"),
        },
        dry_run,
    ))
}

fn success_status(rt: &ResourceType, deleted: &Value) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {
            "name": crate::meta::name(deleted),
            "group": rt.group,
            "kind": rt.plural,
            "uid": crate::meta::str_field(deleted, "uid"),
        },
    })
}

/// Writes a list document without copying the items into a new `Value`.
fn list_metadata(page: &crate::store::ListPage) -> Value {
    let mut metadata = json!({"resourceVersion": page.resource_version.to_string()});
    if let Some(token) = &page.continue_token {
        metadata["continue"] = json!(token);
    }
    if let Some(remaining) = page.remaining {
        metadata["remainingItemCount"] = json!(remaining);
    }
    metadata
}

fn list_response(rt: &ResourceType, page: &crate::store::ListPage) -> Response<ResponseBody> {
    let metadata = list_metadata(page);
    let mut buf = Vec::with_capacity(256 + page.items.len() * 512);
    buf.extend_from_slice(b"{\"kind\":");
    let _ = serde_json::to_writer(&mut buf, &rt.list_kind);
    buf.extend_from_slice(b",\"apiVersion\":");
    let _ = serde_json::to_writer(&mut buf, &rt.api_version());
    buf.extend_from_slice(b",\"metadata\":");
    let _ = serde_json::to_writer(&mut buf, &metadata);
    buf.extend_from_slice(b",\"items\":[");
    for (i, item) in page.items.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        let _ = serde_json::to_writer(&mut buf, item.as_ref());
    }
    buf.extend_from_slice(b"]}");
    bytes_response(StatusCode::OK, "application/json", Bytes::from(buf))
}

pub(crate) fn json_response(status: StatusCode, value: &Value) -> Response<ResponseBody> {
    let body = serde_json::to_vec(value).unwrap_or_default();
    bytes_response(status, "application/json", Bytes::from(body))
}

fn text_response(status: StatusCode, text: &'static str) -> Response<ResponseBody> {
    bytes_response(
        status,
        "text/plain; charset=utf-8",
        Bytes::from_static(text.as_bytes()),
    )
}

pub(crate) fn bytes_response(
    status: StatusCode,
    content_type: &'static str,
    body: Bytes,
) -> Response<ResponseBody> {
    let mut response = Response::new(Full::new(body).boxed_unsync());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    response
}

pub(crate) fn error_response(error: &ApiError) -> Response<ResponseBody> {
    let status = StatusCode::from_u16(error.code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(status, &error.to_status())
}
