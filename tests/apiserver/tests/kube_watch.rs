//! Watches through kube-runtime's `watcher` and `reflector`: live events,
//! resume after dropped watches, relist after 410 Gone, selector transitions.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use serde_json::json;
use test_apiserver::TestApiServer;

fn configmap(name: &str, value: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([("k".to_owned(), value.to_owned())])),
        ..ConfigMap::default()
    }
}

/// Polls `check` until it holds or five seconds pass.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..500 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for: {what}");
}

fn value_of(cm: &ConfigMap) -> String {
    cm.data
        .as_ref()
        .and_then(|d| d.get("k"))
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn watcher_sees_added_modified_deleted() {
    let server = TestApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    api.create(&PostParams::default(), &configmap("before", "0"))
        .await
        .expect("create");
    let mut events = watcher(api.clone(), watcher::Config::default()).boxed();
    // Initial list: Init, InitApply(before), InitDone.
    let mut initial = Vec::new();
    while let Some(event) = events.try_next().await.expect("watch") {
        match event {
            watcher::Event::InitApply(cm) => initial.push(cm.metadata.name.unwrap_or_default()),
            watcher::Event::InitDone => break,
            _ => {}
        }
    }
    assert_eq!(initial, vec!["before".to_owned()]);
    api.create(&PostParams::default(), &configmap("a", "1"))
        .await
        .expect("create");
    api.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "2"}})),
    )
    .await
    .expect("patch");
    api.delete("a", &DeleteParams::default())
        .await
        .expect("delete");
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let event = tokio::time::timeout(Duration::from_secs(5), events.try_next())
            .await
            .expect("event in time")
            .expect("watch")
            .expect("stream open");
        match event {
            watcher::Event::Apply(cm) => seen.push(format!("apply {}", value_of(&cm))),
            watcher::Event::Delete(cm) => {
                seen.push(format!("delete {}", cm.metadata.name.unwrap_or_default()))
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(seen, vec!["apply 1", "apply 2", "delete a"]);
}

#[tokio::test]
async fn reflector_survives_dropped_watches_and_410_by_relisting() {
    let server = TestApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let (reader, writer) = reflector::store();
    let stream = reflector(
        writer,
        watcher(api.clone(), watcher::Config::default().timeout(5)),
    )
    .default_backoff()
    .applied_objects();
    let task = tokio::spawn(stream.for_each(|_| async {}));
    api.create(&PostParams::default(), &configmap("a", "1"))
        .await
        .expect("create");
    eventually("reflector sees a", || reader.state().len() == 1).await;

    // Dropped watch: the watcher re-watches from its last resourceVersion.
    server.drop_watches();
    api.create(&PostParams::default(), &configmap("b", "1"))
        .await
        .expect("create b");
    eventually("reflector sees b after the drop", || {
        reader.state().len() == 2
    })
    .await;

    // Compaction + drop: the re-watch gets 410 Gone and the watcher relists.
    let lists_before = server
        .request_log()
        .entries()
        .iter()
        .filter(|r| r.verb == "list")
        .count();
    server.compact();
    server.drop_watches();
    api.create(&PostParams::default(), &configmap("c", "1"))
        .await
        .expect("create c");
    api.delete("a", &DeleteParams::default())
        .await
        .expect("delete a");
    eventually("reflector converges after 410", || {
        let mut names: Vec<String> = reader
            .state()
            .iter()
            .filter_map(|c| c.metadata.name.clone())
            .collect();
        names.sort();
        names == ["b", "c"]
    })
    .await;
    let log = server.request_log().entries();
    let lists_after = log.iter().filter(|r| r.verb == "list").count();
    assert!(
        lists_after > lists_before,
        "the watcher relisted after 410 Gone"
    );
    task.abort();
}

#[tokio::test]
async fn watch_from_expired_resource_version_gets_410() {
    let server = TestApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let created = api
        .create(&PostParams::default(), &configmap("a", "1"))
        .await
        .expect("create");
    let rv = created.metadata.resource_version.unwrap_or_default();
    server.compact();
    let mut stream = api
        .watch(&kube::api::WatchParams::default(), &rv)
        .await
        .expect("watch")
        .boxed();
    match stream.try_next().await {
        Ok(Some(kube::api::WatchEvent::Error(e))) => assert_eq!(e.code, 410),
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }
}

#[tokio::test]
async fn label_selector_watch_turns_leaving_into_deleted() {
    let server = TestApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let mut cm = configmap("a", "1");
    cm.metadata.labels = Some(BTreeMap::from([("app".to_owned(), "web".to_owned())]));
    api.create(&PostParams::default(), &cm)
        .await
        .expect("create");
    let mut events = watcher(api.clone(), watcher::Config::default().labels("app=web"))
        .touched_objects()
        .boxed();
    let first = events.try_next().await.expect("watch").expect("open");
    assert_eq!(first.metadata.name.as_deref(), Some("a"));
    let mut raw = api
        .watch(
            &kube::api::WatchParams::default().labels("app=web"),
            &server.store().revision().to_string(),
        )
        .await
        .expect("raw watch")
        .boxed();
    api.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "db"}}})),
    )
    .await
    .expect("relabel");
    match tokio::time::timeout(Duration::from_secs(5), raw.try_next()).await {
        Ok(Ok(Some(kube::api::WatchEvent::Deleted(obj)))) => {
            assert_eq!(obj.metadata.name.as_deref(), Some("a"))
        }
        other => panic!("expected DELETED for an object leaving the selection, got {other:?}"),
    }
}

#[tokio::test]
async fn watch_sends_bookmarks_when_allowed() {
    let server = TestApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let rv = server.store().revision().to_string();
    let mut stream = api
        .watch(&kube::api::WatchParams::default(), &rv)
        .await
        .expect("watch")
        .boxed();
    match tokio::time::timeout(Duration::from_secs(5), stream.try_next()).await {
        Ok(Ok(Some(kube::api::WatchEvent::Bookmark(b)))) => {
            assert_eq!(b.metadata.resource_version, rv)
        }
        other => panic!("expected a BOOKMARK, got {other:?}"),
    }
}

#[tokio::test]
async fn streaming_list_watcher_gets_initial_events_then_live_ones() {
    let server = TestApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    api.create(&PostParams::default(), &configmap("a", "1"))
        .await
        .expect("create");
    let mut events = watcher(api.clone(), watcher::Config::default().streaming_lists()).boxed();
    let mut initial = Vec::new();
    loop {
        let event = tokio::time::timeout(Duration::from_secs(5), events.try_next())
            .await
            .expect("initial events in time")
            .expect("watch")
            .expect("open");
        match event {
            watcher::Event::InitApply(cm) => initial.push(cm.metadata.name.unwrap_or_default()),
            watcher::Event::InitDone => break,
            _ => {}
        }
    }
    assert_eq!(initial, ["a"]);
    api.create(&PostParams::default(), &configmap("b", "1"))
        .await
        .expect("create b");
    let next = tokio::time::timeout(Duration::from_secs(5), events.try_next())
        .await
        .expect("in time")
        .expect("watch");
    assert!(
        matches!(next, Some(watcher::Event::Apply(cm)) if cm.metadata.name.as_deref() == Some("b"))
    );
    let log = server.request_log().entries();
    assert!(
        log.iter()
            .any(|r| r.verb == "watch" && r.query.contains("sendInitialEvents=true")),
        "used a streaming list"
    );
    assert!(
        !log.iter().any(|r| r.verb == "list"),
        "no LIST with streaming lists"
    );
}

#[tokio::test]
async fn bounded_event_log_expires_old_resource_versions() {
    let server = TestApiServer::with_options(test_apiserver::ServerOptions {
        event_log_capacity: 3,
        ..test_apiserver::ServerOptions::default()
    });
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let first = api
        .create(&PostParams::default(), &configmap("a", "1"))
        .await
        .expect("create");
    let first_rv = first.metadata.resource_version.unwrap_or_default();
    // Four more events push the one after "a" out of a three-event log.
    for i in 0..4 {
        api.create(&PostParams::default(), &configmap(&format!("b{i}"), "1"))
            .await
            .expect("create");
    }
    let mut old = api
        .watch(&kube::api::WatchParams::default(), &first_rv)
        .await
        .expect("watch")
        .boxed();
    match old.try_next().await {
        Ok(Some(kube::api::WatchEvent::Error(e))) => {
            assert_eq!((e.code, e.reason.as_str()), (410, "Expired"))
        }
        other => panic!("expected 410 for a resourceVersion older than the log, got {other:?}"),
    }
    // The newest events are still resumable.
    let recent = (server.store().revision() - 1).to_string();
    let mut fresh = api
        .watch(&kube::api::WatchParams::default(), &recent)
        .await
        .expect("watch")
        .boxed();
    match tokio::time::timeout(Duration::from_secs(5), fresh.try_next()).await {
        Ok(Ok(Some(kube::api::WatchEvent::Added(cm)))) => {
            assert_eq!(cm.metadata.name.as_deref(), Some("b3"))
        }
        other => panic!("expected the replayed ADDED of b3, got {other:?}"),
    }
}

#[tokio::test]
async fn watch_ends_after_timeout_seconds() {
    let server = TestApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let rv = server.store().revision().to_string();
    let params = kube::api::WatchParams::default()
        .timeout(1)
        .disable_bookmarks();
    let mut stream = api.watch(&params, &rv).await.expect("watch").boxed();
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while let Ok(Some(_)) = stream.try_next().await {}
    })
    .await;
    assert!(
        ended.is_ok(),
        "the watch stream ended after timeoutSeconds=1"
    );
}

#[tokio::test]
async fn metadata_watcher_sees_partial_objects() {
    let server = TestApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let metadata_api: Api<kube::core::PartialObjectMeta<ConfigMap>> =
        Api::namespaced(server.client(), "default");
    let mut events = watcher(metadata_api, watcher::Config::default())
        .applied_objects()
        .boxed();
    api.create(&PostParams::default(), &configmap("a", "1"))
        .await
        .expect("create");
    let first = tokio::time::timeout(Duration::from_secs(5), events.try_next())
        .await
        .expect("in time")
        .expect("watch")
        .expect("open");
    assert_eq!(first.metadata.name.as_deref(), Some("a"));
    // The next one arrives through the watch, not the initial list.
    api.create(&PostParams::default(), &configmap("b", "1"))
        .await
        .expect("create b");
    let second = tokio::time::timeout(Duration::from_secs(5), events.try_next())
        .await
        .expect("in time")
        .expect("watch")
        .expect("open");
    assert_eq!(second.metadata.name.as_deref(), Some("b"));
    assert!(
        server
            .request_log()
            .entries()
            .iter()
            .any(|r| r.verb == "watch" && r.status == 200)
    );
}

#[tokio::test]
async fn watcher_that_falls_too_far_behind_gets_410() {
    let server = TestApiServer::with_options(test_apiserver::ServerOptions {
        watch_lag_limit: 4,
        ..test_apiserver::ServerOptions::default()
    });
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let rv = server.store().revision().to_string();
    let params = kube::api::WatchParams::default().disable_bookmarks();
    let mut stream = api.watch(&params, &rv).await.expect("watch").boxed();
    // Not reading: the watch's own buffers fill, then it lags behind the store.
    for i in 0..600 {
        server
            .seed(serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("cm{i}")}}))
            .expect("seed");
    }
    let mut added = 0;
    let last = loop {
        match tokio::time::timeout(Duration::from_secs(5), stream.try_next()).await {
            Ok(Ok(Some(kube::api::WatchEvent::Added(_)))) => added += 1,
            other => break other,
        }
    };
    match last {
        Ok(Ok(Some(kube::api::WatchEvent::Error(e)))) => assert_eq!(e.code, 410),
        other => panic!("expected 410 after {added} events, got {other:?}"),
    }
    assert!(added < 600, "the lagging watcher did not get every event");
}
