//! `/graphql` over HTTP, following the GraphQL-over-HTTP specification (WebSockets: `websocket`).
//!
//! Media types: `application/graphql-response+json` when the client accepts it, otherwise
//! `application/json`; anything else is 406. With the former, a request that fails before
//! execution (unparsable, invalid) is answered 400 and without a `data` entry; with the latter it
//! is 200, as the specification asks for legacy clients. Mutations are refused over GET (405).

use std::collections::BTreeMap;

use async_graphql::parser::types::OperationType;
use async_graphql::{BatchRequest, BatchResponse, Request as GqlRequest, Response as GqlResponse, Variables};
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::header::{ACCEPT, ALLOW, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use serde::de::value::MapAccessDeserializer;
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::error::Category;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::{HttpState, principal, read_your_writes};
use crate::audit::denials;
use crate::db::replicas;
use crate::error::{Error, ErrorCode};
use crate::graphql::{RequestContext, batch_cost, request_data};

const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";
const JSON: &str = "application/json";

/// The response media type the client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MediaType {
    GraphqlResponseJson,
    Json,
}

impl MediaType {
    fn content_type(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Self::GraphqlResponseJson => "application/graphql-response+json; charset=utf-8",
            Self::Json => "application/json; charset=utf-8",
        })
    }

    /// Negotiates from `Accept`; `None` when nothing we produce is acceptable.
    fn negotiate(headers: &HeaderMap) -> Option<Self> {
        let Some(accept) = headers.get(ACCEPT).and_then(|v| v.to_str().ok()) else {
            return Some(Self::Json);
        };
        let types: Vec<String> = accept
            .split(',')
            .filter_map(|item| item.split(';').next())
            .map(|t| t.trim().to_ascii_lowercase())
            .filter(|t| !t.is_empty())
            .collect();
        if types.iter().any(|t| t == GRAPHQL_RESPONSE_JSON) {
            Some(Self::GraphqlResponseJson)
        } else if types.is_empty()
            || types
                .iter()
                .any(|t| t == JSON || t == "*/*" || t == "application/*")
        {
            Some(Self::Json)
        } else {
            None
        }
    }
}

/// `POST /graphql`: a JSON request body (or a batch: a JSON array of them).
pub(crate) async fn post(State(state): State<HttpState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Some(media) = MediaType::negotiate(&parts.headers) else {
        return not_acceptable();
    };
    let body: Bytes = match axum::body::to_bytes(body, state.app.config.max_body_bytes).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return request_failure(
                media,
                StatusCode::PAYLOAD_TOO_LARGE,
                "the request body is too large",
            );
        }
    };
    let content_type = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence != JSON {
        return request_failure(
            media,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "requests must be sent as Content-Type: application/json",
        );
    }
    let batch = match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => serde_json::from_slice::<Params>(&body)
            .map_err(|error| body_error(&error))
            .and_then(request_from)
            .map(BatchRequest::Single),
        Some(b'[') => match serde_json::from_slice::<Vec<&RawValue>>(&body) {
            Ok(items) if items.is_empty() => Err("a batch must hold at least one request".to_owned()),
            Ok(items) if items.len() > state.app.config.max_batch_operations => Err(format!(
                "a batch may hold at most {} operations; this one holds {}",
                state.app.config.max_batch_operations,
                items.len()
            )),
            Ok(items) => items
                .into_iter()
                .map(parse_params)
                .collect::<Result<Vec<_>, _>>()
                .map(BatchRequest::Batch),
            Err(error) => Err(body_error(&error)),
        },
        _ => match serde_json::from_slice::<&RawValue>(&body) {
            Ok(_) => Err("a request must be a JSON object".to_owned()),
            Err(error) => Err(body_error(&error)),
        },
    };
    match batch {
        Ok(batch) => execute(state, &parts, media, batch).await,
        Err(message) => request_failure(media, StatusCode::BAD_REQUEST, &message),
    }
}

/// `GET /graphql`: a query in the URL (`?query=…&variables=…`), or a WebSocket upgrade.
pub(crate) async fn get(State(state): State<HttpState>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    if is_websocket_upgrade(&parts.headers) {
        return super::websocket::upgrade(state, parts).await;
    }
    let Some(media) = MediaType::negotiate(&parts.headers) else {
        return not_acceptable();
    };
    let request = match request_from_url(parts.uri.query().unwrap_or("")) {
        Ok(request) => request,
        Err(message) => return request_failure(media, StatusCode::BAD_REQUEST, &message),
    };
    if is_mutation(&state, &request) {
        let mut response = request_failure(
            media,
            StatusCode::METHOD_NOT_ALLOWED,
            "mutations must be sent with POST",
        );
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    execute(state, &parts, media, BatchRequest::Single(request)).await
}

/// Authenticates the caller, runs the operation(s) and shapes the HTTP response.
async fn execute(state: HttpState, parts: &Parts, media: MediaType, batch: BatchRequest) -> Response {
    let client = principal::client_info(parts, &state.app.config);
    let principal = match principal::from_headers(&state.app, &parts.headers, &client).await {
        Ok(principal) => principal,
        Err(error) => return credential_failure(media, error),
    };
    let context = RequestContext {
        app: state.app.clone(),
        principal,
        client,
    };
    let prepare = |mut request: GqlRequest, context: RequestContext| {
        request.data = request_data(context);
        if let Some(document) = state.documents.parse(&request.query) {
            request.set_parsed_query(document);
        }
        request
    };
    let mut batch = match batch {
        BatchRequest::Single(request) => BatchRequest::Single(prepare(request, context)),
        BatchRequest::Batch(requests) => BatchRequest::Batch(
            requests
                .into_iter()
                .map(|request| prepare(request, context.clone()))
                .collect(),
        ),
    };
    // A single operation is measured as it runs; a batch is measured whole before any of it runs.
    if let BatchRequest::Batch(requests) = &mut batch
        && let Some(refusal) = batch_cost(&state.schema, requests).await.refusal()
    {
        return request_failure(media, StatusCode::BAD_REQUEST, &refusal);
    }
    let reads_only = match &batch {
        BatchRequest::Single(request) => is_query(&state, request),
        BatchRequest::Batch(requests) => requests.iter().all(|request| is_query(&state, request)),
    };
    let execution = denials::collecting(&state.app, state.schema.execute_batch(batch));
    if reads_only {
        let read_after = match read_your_writes::read_after(&parts.headers) {
            Ok(read_after) => read_after,
            Err(error) => return error_response(media, StatusCode::BAD_REQUEST, error),
        };
        let response = replicas::scope(read_after, execution).await;
        return respond(media, response, state.app.config.max_response_bytes);
    }
    let mut response = execution.await;
    let written_at = read_your_writes::written_at(&state.app).await;
    if let Some(position) = written_at {
        let value = async_graphql::Value::String(position.to_string());
        match &mut response {
            BatchResponse::Single(one) => drop(one.extensions.insert("writtenAt".to_owned(), value)),
            BatchResponse::Batch(many) => many.iter_mut().for_each(|one| {
                one.extensions.insert("writtenAt".to_owned(), value.clone());
            }),
        }
    }
    let mut http = respond(media, response, state.app.config.max_response_bytes);
    if let Some(value) = written_at.and_then(read_your_writes::header) {
        http.headers_mut().insert(read_your_writes::WRITTEN_AT, value);
    }
    http
}

/// The credential could not be checked: RATE_LIMITED (429) after too many wrong ones, UNAVAILABLE
/// (503) when the database gave up in time, else 500.
fn credential_failure(media: MediaType, error: Error) -> Response {
    let status = match error.code() {
        ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    error_response(media, status, error)
}

/// `error` as the only entry of `errors`, its code and field in the entry's extensions.
fn error_response(media: MediaType, status: StatusCode, error: Error) -> Response {
    let error: async_graphql::Error = error.into();
    let mut server_error = async_graphql::ServerError::new(error.message, None);
    server_error.extensions = error.extensions;
    json_response(media, status, &json!({ "errors": [server_error] }))
}

/// Shapes the response, at most `max_bytes` of it: an operation whose result would not fit is
/// answered with an error instead (and so are the operations of a batch after it).
fn respond(media: MediaType, response: BatchResponse, max_bytes: usize) -> Response {
    let mut budget = max_bytes;
    let (body, request_error) = match response {
        BatchResponse::Single(one) => {
            let failed = is_request_error(&one);
            (encode_within(&response_json(one), &mut budget, max_bytes), failed)
        }
        BatchResponse::Batch(many) => {
            let mut body = b"[".to_vec();
            for (i, one) in many.into_iter().enumerate() {
                if i > 0 {
                    body.push(b',');
                }
                body.extend(encode_within(&response_json(one), &mut budget, max_bytes));
            }
            body.push(b']');
            (body, false)
        }
    };
    let status = if request_error && media == MediaType::GraphqlResponseJson {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    bytes_response(media, status, body)
}

/// `value` as JSON if it fits in what is left of `budget`, else an error saying why it is missing.
/// Serialization stops as soon as the budget is spent, so an oversized result is never written out.
fn encode_within(value: &Value, budget: &mut usize, max_bytes: usize) -> Vec<u8> {
    let mut writer = Bounded {
        bytes: Vec::new(),
        room: *budget,
    };
    if serde_json::to_writer(&mut writer, value).is_ok() {
        *budget -= writer.bytes.len();
        return writer.bytes;
    }
    *budget = 0;
    let message = format!(
        "the response is larger than the limit of {max_bytes} bytes for a whole request, so this \
         operation's result was left out (the operation did run); ask for fewer fields or smaller pages"
    );
    serde_json::to_vec(&json!({ "data": null, "errors": [{ "message": message }] })).unwrap_or_default()
}

/// A writer that refuses to grow past `room` bytes.
struct Bounded {
    bytes: Vec<u8>,
    room: usize,
}

impl std::io::Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.len() > self.room - self.bytes.len() {
            return Err(std::io::Error::other("response too large"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A request error: the operation never ran (it did not parse or validate), so there is no data.
fn is_request_error(response: &GqlResponse) -> bool {
    response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|error| error.path.is_empty())
}

fn response_json(response: GqlResponse) -> Value {
    let request_error = is_request_error(&response);
    let mut value = serde_json::to_value(&response).unwrap_or_else(|_| json!({}));
    if request_error && let Value::Object(map) = &mut value {
        map.remove("data");
    }
    value
}

/// One request's parameters as sent. `variables` are read straight into GraphQL values in the one
/// pass over the body: a `serde_json` tree (or a second scan) first would double the work for the
/// large ones integrators send.
#[derive(Deserialize, Default)]
struct Params {
    query: Option<Value>,
    #[serde(rename = "operationName")]
    operation_name: Option<Value>,
    #[serde(default, deserialize_with = "object_or_null")]
    variables: Option<Variables>,
    extensions: Option<Value>,
}

/// `variables`: an object, or null.
fn object_or_null<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Variables>, D::Error> {
    struct ObjectOrNull;
    impl<'de> Visitor<'de> for ObjectOrNull {
        type Value = Option<Variables>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("`variables` to be an object")
        }

        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
            deserializer.deserialize_any(self)
        }

        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            let mut variables = Variables::default();
            *variables = BTreeMap::deserialize(MapAccessDeserializer::new(map))?;
            Ok(Some(variables))
        }
    }
    deserializer.deserialize_option(ObjectOrNull)
}

/// The message for a body serde could not read: broken JSON, or a parameter of the wrong type.
fn body_error(error: &serde_json::Error) -> String {
    match error.classify() {
        Category::Data => error.to_string(),
        Category::Io | Category::Syntax | Category::Eof => format!("the body is not valid JSON: {error}"),
    }
}

/// Validates one JSON request object of a batch (§ "Request Parameters").
fn parse_params(raw: &RawValue) -> Result<GqlRequest, String> {
    if !raw.get().starts_with('{') {
        return Err("a request must be a JSON object".to_owned());
    }
    let params: Params = serde_json::from_str(raw.get()).map_err(|e| e.to_string())?;
    request_from(params)
}

fn request_from(params: Params) -> Result<GqlRequest, String> {
    let query = match params.query {
        Some(Value::String(query)) => query,
        Some(_) => return Err("`query` must be a string".to_owned()),
        None => return Err("`query` is required".to_owned()),
    };
    let mut request = GqlRequest::new(query);
    match params.operation_name {
        None | Some(Value::Null) => {}
        Some(Value::String(name)) => request = request.operation_name(name),
        Some(_) => return Err("`operationName` must be a string".to_owned()),
    }
    if let Some(variables) = params.variables {
        request = request.variables(variables);
    }
    match params.extensions {
        None | Some(Value::Null) => {}
        Some(Value::Object(extensions)) => {
            for (key, value) in extensions {
                let value = async_graphql::Value::from_json(value).map_err(|e| e.to_string())?;
                request.extensions.insert(key, value);
            }
        }
        Some(_) => return Err("`extensions` must be an object".to_owned()),
    }
    Ok(request)
}

/// A GET request's URL parameters (`?query=…&variables=…`), `variables` and `extensions` as JSON.
fn request_from_url(query: &str) -> Result<GqlRequest, String> {
    let pairs: Vec<(String, String)> = url_decoded_pairs(query).collect();
    let mut params = Params::default();
    for (key, value) in &pairs {
        match key.as_str() {
            "query" => params.query = Some(Value::String(value.clone())),
            "operationName" => params.operation_name = Some(Value::String(value.clone())),
            "variables" => {
                params.variables = Some(
                    serde_json::from_str(value)
                        .map_err(|_| "`variables` must be a JSON object".to_owned())?,
                );
            }
            "extensions" => {
                params.extensions = Some(
                    serde_json::from_str(value)
                        .map_err(|_| "`extensions` must be a JSON object".to_owned())?,
                );
            }
            _ => {}
        }
    }
    request_from(params)
}

fn url_decoded_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    form_urlencoded::parse(query.as_bytes()).map(|(key, value)| (key.into_owned(), value.into_owned()))
}

/// True when the operation that would run is a mutation (or subscription: not for GET either).
fn is_mutation(state: &HttpState, request: &GqlRequest) -> bool {
    operation_type(state, request).is_some_and(|ty| ty != OperationType::Query)
}

/// True when the operation that would run is a query: it only reads, so replicas may serve it.
fn is_query(state: &HttpState, request: &GqlRequest) -> bool {
    operation_type(state, request) == Some(OperationType::Query)
}

/// The type of the operation that would run; `None` when none would (execution says why).
fn operation_type(state: &HttpState, request: &GqlRequest) -> Option<OperationType> {
    let Some(document) = state.documents.parse(&request.query) else {
        return None; // execution reports the syntax error
    };
    let operation = match (&request.operation_name, document.operations.iter().count()) {
        (Some(name), _) => document
            .operations
            .iter()
            .find(|(n, _)| n.map(|n| n.as_str()) == Some(name.as_str())),
        (None, 1) => document.operations.iter().next(),
        (None, _) => None,
    };
    operation.map(|(_, op)| op.node.ty)
}

fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(axum::http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

fn json_response(media: MediaType, status: StatusCode, body: &Value) -> Response {
    bytes_response(media, status, serde_json::to_vec(body).unwrap_or_default())
}

fn bytes_response(media: MediaType, status: StatusCode, bytes: Vec<u8>) -> Response {
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, media.content_type());
    response
}

/// A failure before any GraphQL ran: an `errors` list and no `data`.
fn request_failure(media: MediaType, status: StatusCode, message: &str) -> Response {
    json_response(media, status, &json!({ "errors": [{ "message": message }] }))
}

fn not_acceptable() -> Response {
    let mut response = request_failure(
        MediaType::Json,
        StatusCode::NOT_ACCEPTABLE,
        "acceptable response types: application/graphql-response+json, application/json",
    );
    *response.status_mut() = StatusCode::NOT_ACCEPTABLE;
    response
}
