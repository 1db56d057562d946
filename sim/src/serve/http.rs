//! The HTTP side: the Kubernetes core/v1 pods API and the discovery endpoints clients ask for
//! first, over hyper. Every request becomes one [`Call`] to the cluster's thread; every error is
//! a Kubernetes `Status` body.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::mpsc::Sender;
use std::time::Duration;

use futures::StreamExt;
use http_body_util::{combinators::BoxBody, BodyExt, Full, Limited, StreamBody};
use hyper::body::{Bytes, Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};

use podwarden_core::command::Precondition;
use podwarden_core::PodRef;

use super::cluster::{Answer, Call, Query, WATCH_BUFFER};
use super::pod_json::{new_pod, StatusError};

/// Request bodies larger than this get 413.
pub(crate) const MAX_BODY: usize = 1 << 20;

type Body = BoxBody<Bytes, Infallible>;

fn json_response(code: u16, body: &Value) -> Response<Body> {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(bytes)).boxed())
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()).boxed()))
}

fn error_response(e: &StatusError) -> Response<Body> {
    json_response(e.code, &e.body())
}

/// Decodes `%XX` and `+` in a query value.
fn percent_decode(s: &str) -> Result<String, StatusError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = s
                    .get(i + 1..i + 3)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| StatusError::bad_request(format!("bad escape in {s:?}")))?;
                out.push(hex);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| StatusError::bad_request("query is not UTF-8"))
}

/// The query string's parameters (the last value of a repeated one wins).
fn params(query: Option<&str>) -> Result<Vec<(String, String)>, StatusError> {
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            Ok((percent_decode(k)?, percent_decode(v)?))
        })
        .collect()
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn number<T: std::str::FromStr>(
    params: &[(String, String)],
    name: &str,
) -> Result<Option<T>, StatusError> {
    param(params, name)
        .filter(|v| !v.is_empty())
        .map(|v| {
            v.parse()
                .map_err(|_| StatusError::bad_request(format!("{name}: not a valid number: {v:?}")))
        })
        .transpose()
}

fn flag(params: &[(String, String)], name: &str) -> bool {
    matches!(param(params, name), Some("1" | "true" | "True"))
}

fn query(namespace: Option<String>, params: &[(String, String)]) -> Result<Query, StatusError> {
    let label = param(params, "labelSelector")
        .unwrap_or("")
        .parse()
        .map_err(|e| StatusError::bad_request(format!("labelSelector: {e}")))?;
    let field = param(params, "fieldSelector")
        .filter(|f| !f.is_empty())
        .map(str::parse)
        .transpose()
        .map_err(|e| StatusError::bad_request(format!("fieldSelector: {e}")))?;
    let timeout: Option<u64> = number(params, "timeoutSeconds")?;
    Ok(Query {
        namespace,
        label,
        field,
        resource_version: param(params, "resourceVersion").map(str::to_string),
        limit: number(params, "limit")?,
        continue_after: param(params, "continue")
            .filter(|c| !c.is_empty())
            .map(str::to_string),
        timeout: timeout.map(Duration::from_secs),
        bookmarks: flag(params, "allowWatchBookmarks"),
    })
}

/// Where a request goes, from its path.
enum Route {
    Version,
    Api,
    ApiV1,
    Apis,
    Pods(Option<String>),
    Pod(PodRef),
    Eviction(PodRef),
}

fn route(path: &str) -> Option<Route> {
    let parts: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    Some(match parts.as_slice() {
        ["version"] => Route::Version,
        ["api"] => Route::Api,
        ["api", "v1"] => Route::ApiV1,
        ["apis"] => Route::Apis,
        ["api", "v1", "pods"] => Route::Pods(None),
        ["api", "v1", "namespaces", ns, "pods"] => Route::Pods(Some((*ns).to_string())),
        ["api", "v1", "namespaces", ns, "pods", name] => Route::Pod(PodRef::new(*ns, *name)),
        ["api", "v1", "namespaces", ns, "pods", name, "eviction"] => {
            Route::Eviction(PodRef::new(*ns, *name))
        }
        _ => return None,
    })
}

fn api_resources() -> Value {
    let verbs = json!(["create", "delete", "get", "list", "patch", "watch"]);
    json!({
        "kind": "APIResourceList",
        "groupVersion": "v1",
        "resources": [
            {"name": "pods", "singularName": "pod", "namespaced": true, "kind": "Pod", "verbs": verbs, "shortNames": ["po"]},
            {"name": "pods/eviction", "singularName": "", "namespaced": true, "group": "policy", "version": "v1", "kind": "Eviction", "verbs": ["create"]},
        ],
    })
}

/// The HTTP side's handle on the cluster.
#[derive(Clone)]
pub(crate) struct Front {
    pub(crate) calls: Sender<Call>,
    pub(crate) addr: SocketAddr,
}

impl Front {
    async fn ask(&self, make: impl FnOnce(oneshot::Sender<Answer>) -> Call) -> Response<Body> {
        let (reply, answer) = oneshot::channel();
        if self.calls.send(make(reply)).is_err() {
            return error_response(&stopped());
        }
        match answer.await {
            Ok(Ok((code, body))) => json_response(code, &body),
            Ok(Err(e)) => error_response(&e),
            Err(_) => error_response(&stopped()),
        }
    }

    /// Answers one request.
    pub(crate) async fn handle(self, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
        Ok(match self.dispatch(req).await {
            Ok(response) => response,
            Err(e) => error_response(&e),
        })
    }

    async fn dispatch(&self, req: Request<Incoming>) -> Result<Response<Body>, StatusError> {
        let method = req.method().clone();
        let params = params(req.uri().query())?;
        let Some(route) = route(req.uri().path()) else {
            return Err(StatusError::new(
                404,
                "NotFound",
                format!(
                    "the server could not find the requested resource ({})",
                    req.uri().path()
                ),
            ));
        };
        let content_type = req
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        Ok(match (method, route) {
            (Method::GET, Route::Version) => json_response(
                200,
                &json!({"major": "1", "minor": "32", "gitVersion": "v1.32.0-podwarden-sim", "platform": "simulated"}),
            ),
            (Method::GET, Route::Api) => json_response(
                200,
                &json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                    {"clientCIDR": "0.0.0.0/0", "serverAddress": self.addr.to_string()}
                ]}),
            ),
            (Method::GET, Route::ApiV1) => json_response(200, &api_resources()),
            (Method::GET, Route::Apis) => json_response(
                200,
                &json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": []}),
            ),
            (Method::GET, Route::Pods(ns)) => {
                let query = query(ns, &params)?;
                if flag(&params, "watch") {
                    self.watch(query).await?
                } else {
                    self.ask(|reply| Call::List { query, reply }).await
                }
            }
            (Method::POST, Route::Pods(Some(namespace))) => {
                let body = read_json(req).await?;
                let pod = new_pod(&body, &namespace)?;
                self.ask(|reply| Call::Create {
                    namespace,
                    pod,
                    reply,
                })
                .await
            }
            (Method::GET, Route::Pod(pod)) => self.ask(|reply| Call::Get { pod, reply }).await,
            (Method::PATCH, Route::Pod(pod)) => {
                if !(content_type.starts_with("application/merge-patch+json")
                    || content_type.starts_with("application/strategic-merge-patch+json"))
                {
                    return Err(StatusError::new(
                        415,
                        "UnsupportedMediaType",
                        format!("the body of the request was in an unknown format ({content_type:?}): merge and strategic merge patches are served"),
                    ));
                }
                let body = read_json(req).await?;
                let (labels, precondition) = label_patch(&body)?;
                self.ask(|reply| Call::PatchLabels {
                    pod,
                    labels,
                    precondition,
                    reply,
                })
                .await
            }
            (Method::DELETE, Route::Pod(pod)) => {
                let body = read_json(req).await?;
                let grace = match number::<i64>(&params, "gracePeriodSeconds")? {
                    Some(g) => Some(g),
                    None => body.get("gracePeriodSeconds").and_then(Value::as_i64),
                };
                let grace_period_seconds = grace
                    .map(|g| {
                        u32::try_from(g).map_err(|_| {
                            StatusError::new(
                                422,
                                "Invalid",
                                format!(
                                    "gracePeriodSeconds: must be non-negative and fit 32 bits: {g}"
                                ),
                            )
                        })
                    })
                    .transpose()?;
                let pre = &body["preconditions"];
                let uid = pre["uid"].as_str().map(str::to_string);
                let resource_version = pre["resourceVersion"].as_str().map(str::to_string);
                self.ask(|reply| Call::Delete {
                    pod,
                    grace_period_seconds,
                    uid,
                    resource_version,
                    reply,
                })
                .await
            }
            (Method::POST, Route::Eviction(pod)) => {
                let _ = read_json(req).await?;
                self.ask(|reply| Call::Evict { pod, reply }).await
            }
            (method, _) => {
                return Err(StatusError::new(
                    405,
                    "MethodNotAllowed",
                    format!("{method} is not served on this path"),
                ))
            }
        })
    }

    /// A watch: the cluster sends its first lines at once, then every change; the response
    /// streams them until the watch ends.
    async fn watch(&self, query: Query) -> Result<Response<Body>, StatusError> {
        let (lines, mut receiver) = mpsc::channel::<Vec<u8>>(WATCH_BUFFER);
        let (reply, answer) = oneshot::channel();
        self.calls
            .send(Call::Watch {
                query,
                lines,
                reply,
            })
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())??;
        let stream = futures::stream::poll_fn(move |cx| receiver.poll_recv(cx))
            .map(|line| Ok::<_, Infallible>(Frame::data(Bytes::from(line))));
        Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "application/json")
            .body(BodyExt::boxed(StreamBody::new(stream)))
            .map_err(|e| StatusError::new(500, "InternalError", e.to_string()))
    }
}

fn stopped() -> StatusError {
    StatusError::new(503, "ServiceUnavailable", "the served cluster has stopped")
}

/// Reads a JSON body of at most [`MAX_BODY`] bytes (empty: `null`).
async fn read_json(req: Request<Incoming>) -> Result<Value, StatusError> {
    let bytes = Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|_| {
            StatusError::new(
                413,
                "RequestEntityTooLarge",
                format!("the request body is larger than {MAX_BODY} bytes, or was cut off"),
            )
        })?
        .to_bytes();
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| StatusError::bad_request(format!("the body is not valid JSON: {e}")))
}

/// A merge patch the server applies: `metadata.labels` (string values), with
/// `metadata.resourceVersion` as a precondition. Anything else is refused (422): the simulated
/// pods change only through their lifecycle.
fn label_patch(
    body: &Value,
) -> Result<
    (
        std::collections::BTreeMap<String, String>,
        Option<Precondition>,
    ),
    StatusError,
> {
    let unsupported = |what: &str| {
        StatusError::new(
            422,
            "Invalid",
            format!("{what}: only metadata.labels (and metadata.resourceVersion as a precondition) can be patched here"),
        )
    };
    let Some(obj) = body.as_object() else {
        return Err(StatusError::bad_request("the patch is not a JSON object"));
    };
    if let Some(other) = obj.keys().find(|k| *k != "metadata") {
        return Err(unsupported(other));
    }
    let meta = obj.get("metadata").and_then(Value::as_object);
    let mut labels = std::collections::BTreeMap::new();
    let mut precondition = None;
    for (k, v) in meta.into_iter().flatten() {
        match (k.as_str(), v) {
            ("labels", Value::Object(m)) => {
                for (lk, lv) in m {
                    let Value::String(s) = lv else {
                        return Err(unsupported(&format!(
                            "metadata.labels.{lk} (not a string: removing a label is not served)"
                        )));
                    };
                    labels.insert(lk.clone(), s.clone());
                }
            }
            ("resourceVersion", Value::String(rv)) => {
                precondition = Some(Precondition {
                    resource_version: Some(rv.clone()),
                    label: None,
                });
            }
            (other, _) => return Err(unsupported(&format!("metadata.{other}"))),
        }
    }
    Ok((labels, precondition))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_decoded_and_checked() {
        let p = params(Some(
            "labelSelector=airflow-worker%3D1%2Ckubernetes_executor%3DTrue&watch=1&limit=x",
        ))
        .unwrap();
        assert_eq!(
            param(&p, "labelSelector"),
            Some("airflow-worker=1,kubernetes_executor=True")
        );
        assert!(flag(&p, "watch"));
        assert_eq!(number::<usize>(&p, "limit").unwrap_err().code, 400);
        assert_eq!(params(Some("a=%zz")).unwrap_err().code, 400);
        let q = query(
            None,
            &params(Some(
                "labelSelector=a%21%3Db&fieldSelector=status.phase%3DRunning",
            ))
            .unwrap(),
        )
        .unwrap();
        assert_eq!(q.label.to_string(), "a!=b");
        assert!(q.field.is_some());
        assert_eq!(
            query(
                None,
                &params(Some("fieldSelector=spec.nodeName%3Dx")).unwrap()
            )
            .err()
            .map(|e| e.code),
            Some(400)
        );
    }

    #[test]
    fn only_label_patches_are_served() {
        let (labels, pre) =
            label_patch(&json!({"metadata": {"labels": {"a": "b"}, "resourceVersion": "7"}}))
                .unwrap();
        assert_eq!(labels.get("a").map(String::as_str), Some("b"));
        assert_eq!(pre.and_then(|p| p.resource_version).as_deref(), Some("7"));
        assert_eq!(label_patch(&json!({"spec": {}})).unwrap_err().code, 422);
        assert_eq!(
            label_patch(&json!({"metadata": {"labels": {"a": null}}}))
                .unwrap_err()
                .code,
            422
        );
        assert_eq!(label_patch(&json!([])).unwrap_err().code, 400);
    }

    #[test]
    fn paths_route_to_the_pods_api() {
        assert!(
            matches!(route("/api/v1/namespaces/default/pods"), Some(Route::Pods(Some(ns))) if ns == "default")
        );
        assert!(matches!(route("/api/v1/pods"), Some(Route::Pods(None))));
        assert!(matches!(
            route("/api/v1/namespaces/d/pods/p/eviction"),
            Some(Route::Eviction(_))
        ));
        assert!(route("/api/v1/namespaces/d/secrets").is_none());
    }
}
