//! Checks that `template.yaml` and the code agree: function crates, the
//! environment variables each function reads, WebSocket and HTTP routes, the
//! payloads in `events/`, and the table schemas of [`tables::definitions`].
//!
//! Every check returns a list of problems, so the tests at the end can also
//! show that a deliberately broken template is reported. Set
//! `CHAT_TEMPLATE_PATH` to run the checks against another copy of the
//! template; `functions/` and `events/` are still read from this repository.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::{env, fs};

use serde_json::{Map, Value, json};
use shared::config::{FUNCTION_ENVIRONMENT, TABLE_VARIABLES, TableNames};
use shared::handlers::http;
use shared::protocol::frame_type;
use shared::tables::{self, TableDefinition};

/// Environment variable that overrides the path of the template under test.
const TEMPLATE_PATH_VARIABLE: &str = "CHAT_TEMPLATE_PATH";

use shared::handlers::websocket::{self, Route as WebSocketRoute};

/// The WebSocket routes that the handlers serve.
const WEBSOCKET_ROUTES: &[WebSocketRoute] = websocket::ROUTES;

/// The route selection expression that turns a frame's `type` into a route key.
const ROUTE_SELECTION_EXPRESSION: &str = "$request.body.type";

/// The function behind the HTTP API.
const HTTP_FUNCTION: &str = "http-api";

/// HTTP routes that the template may declare before `http-api` serves them:
/// none, so every template route must be in [`http::ROUTES`].
const HTTP_ROUTES_NOT_YET_SERVED: &[(&str, &str)] = &[];

/// The function that the Messages stream invokes.
const FANOUT_FUNCTION: &str = "stream-fanout";

/// The function that the attachments bucket notifies.
const UPLOAD_FUNCTION: &str = "upload-complete";

/// Functions that the template may declare before their crate exists under
/// `functions/`: none, so every function's directory is checked.
const FUNCTIONS_WITHOUT_CRATE: &[&str] = &[];

// ---------------------------------------------------------------------------
// Reading the template
// ---------------------------------------------------------------------------

/// A parsed template, with every short-form tag (`!Ref X`, `!Sub s`,
/// `!GetAtt A.B`) rewritten to its long form (`{"Ref": X}`, `{"Fn::Sub": s}`,
/// `{"Fn::GetAtt": [A, B]}`).
#[derive(Clone)]
struct Template {
    root: Value,
}

impl Template {
    fn parse(yaml: &str) -> Result<Self, String> {
        let value: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(yaml).map_err(|err| format!("invalid YAML: {err}"))?;
        let root = yaml_to_json(value);
        if !root.get("Resources").is_some_and(Value::is_object) {
            return Err("the template has no Resources mapping".to_owned());
        }
        Ok(Self { root })
    }

    fn resources(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.root["Resources"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(id, resource)| (id.as_str(), resource))
    }

    fn resources_of_type<'a>(
        &'a self,
        resource_type: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a Value)> {
        self.resources()
            .filter(move |(_, resource)| resource["Type"] == resource_type)
    }

    fn resource(&self, id: &str) -> Option<&Value> {
        self.root["Resources"].get(id)
    }

    fn resources_mut(&mut self) -> &mut Map<String, Value> {
        self.root["Resources"]
            .as_object_mut()
            .expect("Template::parse checked that Resources is a mapping")
    }

    /// Returns the logical id of the first resource for which `matches` holds.
    fn find(&self, matches: impl Fn(&Value) -> bool) -> Option<String> {
        self.resources()
            .find(|(_, resource)| matches(resource))
            .map(|(id, _)| id.to_owned())
    }

    /// Lists every `AWS::Serverless::Function`, by binary name (from
    /// `Metadata.BuildProperties.Binary`) to logical id.
    fn functions(&self) -> BTreeMap<String, String> {
        self.resources_of_type("AWS::Serverless::Function")
            .filter_map(|(id, resource)| {
                let binary = resource["Metadata"]["BuildProperties"]["Binary"].as_str()?;
                Some((binary.to_owned(), id.to_owned()))
            })
            .collect()
    }

    /// Returns the binary name of the function with logical id `id`.
    fn function_name(&self, id: &str) -> Option<String> {
        self.resource(id)?["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .map(str::to_owned)
    }

    /// Merges a function's environment variables with those under
    /// `Globals.Function.Environment`, as SAM does.
    fn environment(&self, function_id: &str) -> BTreeMap<String, Value> {
        let global = &self.root["Globals"]["Function"]["Environment"]["Variables"];
        let own = self
            .resource(function_id)
            .map(|function| &function["Properties"]["Environment"]["Variables"]);
        let mut variables = BTreeMap::new();
        for scope in [Some(global), own].into_iter().flatten() {
            if let Some(scope) = scope.as_object() {
                for (name, value) in scope {
                    variables.insert(name.clone(), value.clone());
                }
            }
        }
        variables
    }

    /// Finds the logical id of the one WebSocket API.
    fn websocket_api(&self) -> Result<String, String> {
        let apis: Vec<&str> = self
            .resources_of_type("AWS::ApiGatewayV2::Api")
            .filter(|(_, api)| api["Properties"]["ProtocolType"] == "WEBSOCKET")
            .map(|(id, _)| id)
            .collect();
        match apis.as_slice() {
            [api] => Ok((*api).to_owned()),
            _ => Err(format!(
                "expected one AWS::ApiGatewayV2::Api with ProtocolType WEBSOCKET, found {}: {apis:?}",
                apis.len()
            )),
        }
    }

    /// Lists the WebSocket API's routes, by route key to logical id.
    fn websocket_routes(&self, api: &str) -> BTreeMap<String, String> {
        self.resources_of_type("AWS::ApiGatewayV2::Route")
            .filter(|(_, route)| ref_target(&route["Properties"]["ApiId"]) == Some(api))
            .filter_map(|(id, route)| {
                let key = route["Properties"]["RouteKey"].as_str()?;
                Some((key.to_owned(), id.to_owned()))
            })
            .collect()
    }

    /// Lists the HttpApi events of every function as (function logical id, event name, properties).
    fn http_api_events(&self) -> Vec<(String, String, Value)> {
        let mut events = Vec::new();
        for (id, function) in self.resources_of_type("AWS::Serverless::Function") {
            let Some(function_events) = function["Properties"]["Events"].as_object() else {
                continue;
            };
            for (name, event) in function_events {
                if event["Type"] == "HttpApi" {
                    events.push((id.to_owned(), name.clone(), event["Properties"].clone()));
                }
            }
        }
        events
    }
}

/// Converts YAML to JSON, rewriting CloudFormation's short-form tags.
fn yaml_to_json(value: serde_yaml_ng::Value) -> Value {
    use serde_yaml_ng::Value as Yaml;
    match value {
        Yaml::Null => Value::Null,
        Yaml::Bool(flag) => Value::Bool(flag),
        Yaml::Number(number) => {
            if let Some(integer) = number.as_i64() {
                Value::from(integer)
            } else if let Some(integer) = number.as_u64() {
                Value::from(integer)
            } else {
                number.as_f64().map_or(Value::Null, Value::from)
            }
        }
        Yaml::String(text) => Value::String(text),
        Yaml::Sequence(items) => Value::Array(items.into_iter().map(yaml_to_json).collect()),
        Yaml::Mapping(mapping) => Value::Object(
            mapping
                .into_iter()
                .map(|(key, value)| (yaml_key(key), yaml_to_json(value)))
                .collect(),
        ),
        Yaml::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            long_form(tag.trim_start_matches('!'), yaml_to_json(tagged.value))
        }
    }
}

fn yaml_key(key: serde_yaml_ng::Value) -> String {
    match key {
        serde_yaml_ng::Value::String(text) => text,
        other => serde_yaml_ng::to_string(&other)
            .unwrap_or_default()
            .trim()
            .to_owned(),
    }
}

/// Builds the long form of the intrinsic function written as `!{tag} value`.
fn long_form(tag: &str, value: Value) -> Value {
    match tag {
        "Ref" | "Condition" => json!({ tag: value }),
        "GetAtt" => {
            let value = match value {
                Value::String(path) => match path.split_once('.') {
                    Some((resource, attribute)) => json!([resource, attribute]),
                    None => Value::String(path),
                },
                other => other,
            };
            json!({ "Fn::GetAtt": value })
        }
        other => json!({ format!("Fn::{other}"): value }),
    }
}

/// Returns `X` of `{"Ref": "X"}`.
fn ref_target(value: &Value) -> Option<&str> {
    value.get("Ref")?.as_str()
}

/// Returns `(A, B)` of `{"Fn::GetAtt": ["A", "B"]}`.
fn get_att(value: &Value) -> Option<(&str, &str)> {
    match value.get("Fn::GetAtt")?.as_array()?.as_slice() {
        [resource, attribute] => Some((resource.as_str()?, attribute.as_str()?)),
        _ => None,
    }
}

/// Returns the string of `{"Fn::Sub": "..."}` or `{"Fn::Sub": ["...", {...}]}`.
fn sub_string(value: &Value) -> Option<&str> {
    match value.get("Fn::Sub")? {
        Value::String(text) => Some(text),
        Value::Array(parts) => parts.first()?.as_str(),
        _ => None,
    }
}

/// Lists the names inside `${...}` of a `Fn::Sub` string, skipping `${!literal}`.
fn sub_references(text: &str) -> Vec<&str> {
    let mut references = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else { break };
        let name = &after[..end];
        if !name.starts_with('!') {
            references.push(name);
        }
        rest = &after[end + 1..];
    }
    references
}

fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the shared crate lives one level below the repository root")
        .to_path_buf()
}

fn template_path() -> PathBuf {
    env::var_os(TEMPLATE_PATH_VARIABLE)
        .map(PathBuf::from)
        .unwrap_or_else(|| repository_root().join("template.yaml"))
}

/// Parses the template under test on first use.
fn template() -> &'static Template {
    static TEMPLATE: OnceLock<Template> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let path = template_path();
        let yaml = fs::read_to_string(&path)
            .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()));
        Template::parse(&yaml).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
    })
}

/// Lists the directories under `functions/` that contain a `Cargo.toml`.
fn function_crates() -> BTreeSet<String> {
    let directory = repository_root().join("functions");
    let entries = fs::read_dir(&directory)
        .unwrap_or_else(|err| panic!("cannot list {}: {err}", directory.display()));
    entries
        .map(|entry| entry.expect("a readable directory entry").path())
        .filter(|path| path.join("Cargo.toml").is_file())
        .filter_map(|path| Some(path.file_name()?.to_str()?.to_owned()))
        .collect()
}

/// Parses every `events/*.json` file, sorted by file name. Returns none when
/// `events/` is missing.
fn event_payloads() -> Vec<(String, Value)> {
    let directory = repository_root().join("events");
    let Ok(entries) = fs::read_dir(&directory) else {
        return Vec::new();
    };
    let mut payloads: Vec<(String, Value)> = entries
        .map(|entry| entry.expect("a readable directory entry").path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "json")
        })
        .map(|path| {
            let text = fs::read_to_string(&path)
                .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()));
            let payload = serde_json::from_str(&text)
                .unwrap_or_else(|err| panic!("{} is not valid JSON: {err}", path.display()));
            let name = path
                .file_name()
                .and_then(|name| name.to_str())
                .unwrap_or_default()
                .to_owned();
            (name, payload)
        })
        .collect();
    payloads.sort_by(|a, b| a.0.cmp(&b.0));
    payloads
}

fn definitions() -> Vec<TableDefinition> {
    tables::definitions(&TableNames::with_prefix(""))
}

/// Derives the environment variable that names a table: `ClientMessages`
/// becomes `CLIENT_MESSAGES_TABLE`.
fn table_variable(logical: &str) -> String {
    let mut variable = String::new();
    for (index, character) in logical.char_indices() {
        if character.is_ascii_uppercase() && index > 0 {
            variable.push('_');
        }
        variable.push(character.to_ascii_uppercase());
    }
    variable.push_str("_TABLE");
    variable
}

fn table_resource_id(definition: &TableDefinition) -> String {
    format!("{}Table", definition.logical)
}

/// Panics with every problem, one per line, unless there are none.
fn assert_no_problems(check: &str, problems: &[String]) {
    assert!(
        problems.is_empty(),
        "template.yaml and the code disagree ({check}):\n  {}",
        problems.join("\n  ")
    );
}

// ---------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------

/// Checks the function resources against the crates under `functions/`.
fn check_function_crates(template: &Template, crates: &BTreeSet<String>) -> Vec<String> {
    let mut problems = Vec::new();
    let mut names = BTreeSet::new();
    for (id, function) in template.resources_of_type("AWS::Serverless::Function") {
        let metadata = &function["Metadata"];
        if metadata["BuildMethod"] != "rust-cargolambda" {
            problems.push(format!(
                "{id}: Metadata.BuildMethod is {}, expected rust-cargolambda",
                metadata["BuildMethod"]
            ));
        }
        let Some(binary) = metadata["BuildProperties"]["Binary"].as_str() else {
            problems.push(format!("{id}: Metadata.BuildProperties.Binary is missing"));
            continue;
        };
        if !names.insert(binary.to_owned()) {
            problems.push(format!(
                "{id}: binary {binary} is built by more than one function resource"
            ));
        }
        if !crates.contains(binary) && !FUNCTIONS_WITHOUT_CRATE.contains(&binary) {
            problems.push(format!(
                "{id}: builds binary {binary}, but functions/{binary} does not exist"
            ));
        }
    }
    for name in crates {
        if !names.contains(name) {
            problems.push(format!(
                "functions/{name} has no AWS::Serverless::Function whose Metadata.BuildProperties.Binary is {name}"
            ));
        }
    }
    problems
}

/// Checks each function's environment variables against [`TABLE_VARIABLES`]
/// and its entry in [`FUNCTION_ENVIRONMENT`].
fn check_environment(template: &Template) -> Vec<String> {
    let mut problems = Vec::new();
    let functions = template.functions();
    for (name, id) in &functions {
        let Some((_, extra)) = FUNCTION_ENVIRONMENT
            .iter()
            .find(|(function, _)| function == name)
        else {
            problems.push(format!(
                "{name} ({id}): no entry in shared::config::FUNCTION_ENVIRONMENT"
            ));
            continue;
        };
        let expected: BTreeSet<&str> = TABLE_VARIABLES
            .iter()
            .chain(extra.iter())
            .copied()
            .collect();
        let environment = template.environment(id);
        let actual: BTreeSet<&str> = environment.keys().map(String::as_str).collect();
        for missing in expected.difference(&actual) {
            problems.push(format!(
                "{name} ({id}): the code reads {missing}, which the template does not set"
            ));
        }
        for unread in actual.difference(&expected) {
            problems.push(format!(
                "{name} ({id}): the template sets {unread}, which the code does not read"
            ));
        }
    }
    for (name, _) in FUNCTION_ENVIRONMENT {
        if !functions.contains_key(*name) {
            problems.push(format!(
                "{name}: listed in shared::config::FUNCTION_ENVIRONMENT, but no function resource builds it"
            ));
        }
    }
    problems
}

/// Checks that each table variable refers to the table it names.
fn check_table_variables(template: &Template) -> Vec<String> {
    let mut problems = Vec::new();
    let functions = template.functions();
    for definition in definitions() {
        let variable = table_variable(definition.logical);
        let table_id = table_resource_id(&definition);
        if !TABLE_VARIABLES.contains(&variable.as_str()) {
            problems.push(format!(
                "table {}: expected variable {variable} in shared::config::TABLE_VARIABLES",
                definition.logical
            ));
            continue;
        }
        for (name, id) in &functions {
            let environment = template.environment(id);
            let Some(value) = environment.get(&variable) else {
                continue; // check_environment reports a missing variable.
            };
            if ref_target(value) != Some(table_id.as_str()) {
                problems.push(format!(
                    "{name} ({id}): {variable} is {value}, expected !Ref {table_id}"
                ));
            }
        }
    }
    problems
}

/// Checks `WEBSOCKET_ENDPOINT` against the WebSocket API and its stage.
fn check_websocket_endpoint(template: &Template) -> Vec<String> {
    let api = match template.websocket_api() {
        Ok(api) => api,
        Err(problem) => return vec![problem],
    };
    let stage_name = template
        .resources_of_type("AWS::ApiGatewayV2::Stage")
        .find(|(_, stage)| ref_target(&stage["Properties"]["ApiId"]) == Some(api.as_str()))
        .map(|(_, stage)| stage["Properties"]["StageName"].clone());
    let Some(stage_name) = stage_name else {
        return vec![format!("{api}: no AWS::ApiGatewayV2::Stage")];
    };
    let stage_suffix = match (ref_target(&stage_name), stage_name.as_str()) {
        (Some(parameter), _) => format!("/${{{parameter}}}"),
        (None, Some(literal)) => format!("/{literal}"),
        (None, None) => {
            return vec![format!(
                "{api}: stage name {stage_name} is not a string or !Ref"
            )];
        }
    };
    let prefix = format!("https://${{{api}}}.execute-api.");
    let mut problems = Vec::new();
    for (name, id) in template.functions() {
        let environment = template.environment(&id);
        let Some(value) = environment.get(shared::config::var::WEBSOCKET_ENDPOINT) else {
            continue;
        };
        let Some(endpoint) = sub_string(value) else {
            problems.push(format!(
                "{name} ({id}): WEBSOCKET_ENDPOINT is {value}, expected a !Sub"
            ));
            continue;
        };
        if !endpoint.starts_with(&prefix) || !endpoint.ends_with(&stage_suffix) {
            problems.push(format!(
                "{name} ({id}): WEBSOCKET_ENDPOINT is {endpoint}, expected {prefix}...{stage_suffix}"
            ));
        }
    }
    problems
}

/// Checks the WebSocket API's route keys against [`WEBSOCKET_ROUTES`].
fn check_websocket_route_keys(template: &Template) -> Vec<String> {
    let api = match template.websocket_api() {
        Ok(api) => api,
        Err(problem) => return vec![problem],
    };
    let mut problems = Vec::new();
    let expression = &template.resource(&api).expect("websocket_api returned it")["Properties"]["RouteSelectionExpression"];
    if expression != ROUTE_SELECTION_EXPRESSION {
        problems.push(format!(
            "{api}: RouteSelectionExpression is {expression}, expected {ROUTE_SELECTION_EXPRESSION}"
        ));
    }
    let routes = template.websocket_routes(&api);
    for route in WEBSOCKET_ROUTES {
        if !routes.contains_key(route.key) {
            problems.push(format!(
                "route {}: served by {} in the code, missing from {api}",
                route.key, route.function
            ));
        }
    }
    for (key, id) in &routes {
        if !WEBSOCKET_ROUTES.iter().any(|route| route.key == key) {
            problems.push(format!(
                "route {key} ({id}): no handler in the code serves it"
            ));
        }
    }
    problems
}

/// Checks that each WebSocket route targets an AWS_PROXY integration of the
/// function that serves the route.
fn check_websocket_integrations(template: &Template) -> Vec<String> {
    let api = match template.websocket_api() {
        Ok(api) => api,
        Err(problem) => return vec![problem],
    };
    let mut problems = Vec::new();
    for (key, route_id) in template.websocket_routes(&api) {
        let Some(expected) = WEBSOCKET_ROUTES.iter().find(|route| route.key == key) else {
            continue; // check_websocket_route_keys reports it.
        };
        let target = &template.resource(&route_id).expect("listed route")["Properties"]["Target"];
        let integration_id = sub_string(target)
            .and_then(|text| text.strip_prefix("integrations/${"))
            .and_then(|text| text.strip_suffix('}'));
        let Some(integration_id) = integration_id else {
            problems.push(format!(
                "route {key} ({route_id}): Target is {target}, expected !Sub integrations/${{Integration}}"
            ));
            continue;
        };
        let Some(integration) = template
            .resource(integration_id)
            .filter(|resource| resource["Type"] == "AWS::ApiGatewayV2::Integration")
        else {
            problems.push(format!(
                "route {key} ({route_id}): target {integration_id} is not an AWS::ApiGatewayV2::Integration"
            ));
            continue;
        };
        let properties = &integration["Properties"];
        if properties["IntegrationType"] != "AWS_PROXY" {
            problems.push(format!(
                "route {key}: integration {integration_id} has IntegrationType {}, expected AWS_PROXY",
                properties["IntegrationType"]
            ));
        }
        if ref_target(&properties["ApiId"]) != Some(api.as_str()) {
            problems.push(format!(
                "route {key}: integration {integration_id} does not belong to {api}"
            ));
        }
        let function = sub_string(&properties["IntegrationUri"])
            .into_iter()
            .flat_map(sub_references)
            .filter_map(|reference| reference.strip_suffix(".Arn"))
            .find_map(|function_id| template.function_name(function_id));
        if function.as_deref() != Some(expected.function) {
            problems.push(format!(
                "route {key}: integration {integration_id} invokes {}, expected {}",
                function
                    .as_deref()
                    .unwrap_or("no function of this template"),
                expected.function
            ));
        }
    }
    problems
}

/// Checks that every two-way route has a `$default` route response.
fn check_websocket_route_responses(template: &Template) -> Vec<String> {
    let api = match template.websocket_api() {
        Ok(api) => api,
        Err(problem) => return vec![problem],
    };
    let routes = template.websocket_routes(&api);
    let mut problems = Vec::new();
    for route in WEBSOCKET_ROUTES.iter().filter(|route| route.two_way) {
        let Some(route_id) = routes.get(route.key) else {
            continue; // check_websocket_route_keys reports it.
        };
        let properties = &template.resource(route_id).expect("listed route")["Properties"];
        if properties["RouteResponseSelectionExpression"] != "$default" {
            problems.push(format!(
                "route {} ({route_id}): RouteResponseSelectionExpression is {}, expected $default, \
                 or API Gateway drops the reply",
                route.key, properties["RouteResponseSelectionExpression"]
            ));
        }
        let has_response = template
            .resources_of_type("AWS::ApiGatewayV2::RouteResponse")
            .any(|(_, response)| {
                let response = &response["Properties"];
                ref_target(&response["RouteId"]) == Some(route_id.as_str())
                    && response["RouteResponseKey"] == "$default"
            });
        if !has_response {
            problems.push(format!(
                "route {} ({route_id}): no AWS::ApiGatewayV2::RouteResponse with RouteResponseKey $default",
                route.key
            ));
        }
    }
    problems
}

/// Checks that a permission lets API Gateway invoke each route's function.
fn check_websocket_permissions(template: &Template) -> Vec<String> {
    let api = match template.websocket_api() {
        Ok(api) => api,
        Err(problem) => return vec![problem],
    };
    let functions = template.functions();
    let mut problems = Vec::new();
    for (key, route_id) in template.websocket_routes(&api) {
        let Some(expected) = WEBSOCKET_ROUTES.iter().find(|route| route.key == key) else {
            continue;
        };
        let Some(function_id) = functions.get(expected.function) else {
            problems.push(format!(
                "route {key}: no function resource builds {}",
                expected.function
            ));
            continue;
        };
        let permitted =
            template
                .resources_of_type("AWS::Lambda::Permission")
                .any(|(_, permission)| {
                    let permission = &permission["Properties"];
                    let source = sub_string(&permission["SourceArn"]).unwrap_or_default();
                    ref_target(&permission["FunctionName"]) == Some(function_id.as_str())
                        && permission["Principal"] == "apigateway.amazonaws.com"
                        && sub_references(source).contains(&api.as_str())
                        && (source.ends_with(&format!("/{key}")) || source.ends_with("/*"))
                });
        if !permitted {
            problems.push(format!(
                "route {key} ({route_id}): no AWS::Lambda::Permission lets apigateway.amazonaws.com \
                 invoke {function_id} for this route of {api}"
            ));
        }
    }
    problems
}

/// Checks that the WebSocket stage deploys every change by itself.
fn check_websocket_stage(template: &Template) -> Vec<String> {
    let api = match template.websocket_api() {
        Ok(api) => api,
        Err(problem) => return vec![problem],
    };
    let stages: Vec<&Value> = template
        .resources_of_type("AWS::ApiGatewayV2::Stage")
        .filter(|(_, stage)| ref_target(&stage["Properties"]["ApiId"]) == Some(api.as_str()))
        .map(|(_, stage)| stage)
        .collect();
    match stages.as_slice() {
        [stage] if stage["Properties"]["AutoDeploy"] == true => Vec::new(),
        [_] => vec![format!("{api}: its stage does not set AutoDeploy: true")],
        _ => vec![format!(
            "{api}: expected one AWS::ApiGatewayV2::Stage, found {}",
            stages.len()
        )],
    }
}

/// Checks WebSocket payloads (`events/ws-*.json`) against the template's route keys.
fn check_websocket_payloads(template: &Template, payloads: &[(String, Value)]) -> Vec<String> {
    let api = match template.websocket_api() {
        Ok(api) => api,
        Err(problem) => return vec![problem],
    };
    let routes = template.websocket_routes(&api);
    let mut problems = Vec::new();
    for (file, payload) in payloads.iter().filter(|(file, _)| file.starts_with("ws-")) {
        match payload["requestContext"]["routeKey"].as_str() {
            None => problems.push(format!("events/{file}: requestContext.routeKey is missing")),
            Some(key) if !routes.contains_key(key) => problems.push(format!(
                "events/{file}: route key {key} is not a route of {api}"
            )),
            Some(_) => {}
        }
    }
    problems
}

/// Checks the HTTP API's routes against [`http::ROUTES`].
fn check_http_routes(template: &Template) -> Vec<String> {
    let mut problems = Vec::new();
    let http_apis: Vec<&str> = template
        .resources_of_type("AWS::Serverless::HttpApi")
        .map(|(id, _)| id)
        .collect();
    let [http_api] = http_apis.as_slice() else {
        return vec![format!(
            "expected one AWS::Serverless::HttpApi, found {}: {http_apis:?}",
            http_apis.len()
        )];
    };
    let functions = template.functions();
    let http_function = functions.get(HTTP_FUNCTION);
    let mut routes = BTreeSet::new();
    for (function_id, event, properties) in template.http_api_events() {
        if http_function != Some(&function_id) {
            problems.push(format!(
                "{function_id}: HttpApi event {event}, but only {HTTP_FUNCTION} serves the HTTP API"
            ));
            continue;
        }
        if ref_target(&properties["ApiId"]) != Some(*http_api) {
            problems.push(format!(
                "{function_id}: HttpApi event {event} has ApiId {}, expected !Ref {http_api}",
                properties["ApiId"]
            ));
        }
        let (Some(method), Some(path)) =
            (properties["Method"].as_str(), properties["Path"].as_str())
        else {
            problems.push(format!(
                "{function_id}: HttpApi event {event} needs Method and Path"
            ));
            continue;
        };
        routes.insert((method.to_ascii_uppercase(), path.to_owned()));
    }
    let served: BTreeSet<(String, String)> = http::ROUTES
        .iter()
        .map(|(method, path)| ((*method).to_owned(), (*path).to_owned()))
        .collect();
    for (method, path) in served.difference(&routes) {
        problems.push(format!(
            "route {method} {path}: served by {HTTP_FUNCTION} in the code, missing from the template"
        ));
    }
    for (method, path) in routes.difference(&served) {
        let pending = HTTP_ROUTES_NOT_YET_SERVED
            .iter()
            .any(|(pending_method, pending_path)| pending_method == method && pending_path == path);
        if !pending {
            problems.push(format!(
                "route {method} {path}: in the template, but {HTTP_FUNCTION} does not serve it \
                 (shared::handlers::http::ROUTES)"
            ));
        }
    }
    problems
}

/// Checks HTTP payloads (`events/*.json` with `requestContext.http`) against
/// the template's HTTP routes.
fn check_http_payloads(template: &Template, payloads: &[(String, Value)]) -> Vec<String> {
    let routes: Vec<(String, String)> = template
        .http_api_events()
        .into_iter()
        .filter_map(|(_, _, properties)| {
            Some((
                properties["Method"].as_str()?.to_ascii_uppercase(),
                properties["Path"].as_str()?.to_owned(),
            ))
        })
        .collect();
    let mut problems = Vec::new();
    for (file, payload) in payloads {
        let context = &payload["requestContext"];
        if !context["http"].is_object() {
            continue;
        }
        let (Some(method), Some(raw_path)) = (
            context["http"]["method"].as_str(),
            payload["rawPath"].as_str(),
        ) else {
            problems.push(format!(
                "events/{file}: requestContext.http.method or rawPath is missing"
            ));
            continue;
        };
        // A named stage is the first segment of rawPath; $default has none.
        let path = match context["stage"].as_str() {
            Some(stage) if stage != "$default" => raw_path
                .strip_prefix(&format!("/{stage}"))
                .filter(|rest| rest.starts_with('/'))
                .unwrap_or(raw_path),
            _ => raw_path,
        };
        let served = routes
            .iter()
            .any(|(route_method, pattern)| route_method == method && path_matches(pattern, path));
        if !served {
            problems.push(format!(
                "events/{file}: {method} {path} matches no HttpApi route of the template"
            ));
        }
    }
    problems
}

/// Returns whether `path` matches `pattern`, where a `{name}` segment matches
/// any one segment.
fn path_matches(pattern: &str, path: &str) -> bool {
    let pattern: Vec<&str> = pattern.split('/').collect();
    let path: Vec<&str> = path.split('/').collect();
    pattern.len() == path.len()
        && pattern.iter().zip(&path).all(|(expected, actual)| {
            (expected.starts_with('{') && expected.ends_with('}') && !actual.is_empty())
                || expected == actual
        })
}

/// Checks the table resources against [`tables::definitions`], one for one.
fn check_table_set(template: &Template) -> Vec<String> {
    let definitions = definitions();
    let expected: BTreeSet<String> = definitions.iter().map(table_resource_id).collect();
    let mut problems = Vec::new();
    for id in &expected {
        match template.resource(id) {
            None => problems.push(format!("{id}: missing from the template")),
            Some(resource) if resource["Type"] != "AWS::DynamoDB::Table" => problems.push(format!(
                "{id}: Type is {}, expected AWS::DynamoDB::Table",
                resource["Type"]
            )),
            Some(_) => {}
        }
    }
    for (id, _) in template.resources_of_type("AWS::DynamoDB::Table") {
        if !expected.contains(id) {
            problems.push(format!(
                "{id}: a table that shared::tables::definitions lacks"
            ));
        }
    }
    problems
}

/// Pairs each defined table that exists in the template with its logical id
/// and properties.
fn defined_tables(template: &Template) -> Vec<(TableDefinition, String, &Value)> {
    definitions()
        .into_iter()
        .filter_map(|definition| {
            let id = table_resource_id(&definition);
            let properties = &template.resource(&id)?["Properties"];
            Some((definition, id, properties))
        })
        .collect()
}

/// Reads `(hash, range)` from a KeySchema.
fn key_schema(schema: &Value) -> Result<(String, Option<String>), String> {
    let mut hash = None;
    let mut range = None;
    for element in schema.as_array().into_iter().flatten() {
        let name = element["AttributeName"].as_str().map(str::to_owned);
        match element["KeyType"].as_str() {
            Some("HASH") => hash = name,
            Some("RANGE") => range = name,
            other => return Err(format!("KeyType {other:?} is neither HASH nor RANGE")),
        }
    }
    hash.map(|hash| (hash, range))
        .ok_or_else(|| format!("KeySchema {schema} has no HASH key"))
}

fn describe_key(hash: &str, range: Option<&str>) -> String {
    match range {
        Some(range) => format!("{hash} + {range}"),
        None => hash.to_owned(),
    }
}

/// Checks each table's key schema, attribute definitions and billing mode.
fn check_table_keys(template: &Template) -> Vec<String> {
    let mut problems = Vec::new();
    for (definition, id, properties) in defined_tables(template) {
        if properties["BillingMode"] != "PAY_PER_REQUEST" {
            problems.push(format!(
                "{id}: BillingMode is {}, expected PAY_PER_REQUEST",
                properties["BillingMode"]
            ));
        }
        let expected_key = describe_key(definition.hash, definition.range);
        match key_schema(&properties["KeySchema"]) {
            Err(problem) => problems.push(format!("{id}: {problem}")),
            Ok((hash, range)) => {
                let actual_key = describe_key(&hash, range.as_deref());
                if actual_key != expected_key {
                    problems.push(format!(
                        "{id}: key is {actual_key}, expected {expected_key}"
                    ));
                }
            }
        }
        let mut expected_attributes: BTreeSet<&str> = BTreeSet::new();
        expected_attributes.extend(
            [Some(definition.hash), definition.range]
                .into_iter()
                .flatten(),
        );
        for index in &definition.indexes {
            expected_attributes.extend([Some(index.hash), index.range].into_iter().flatten());
        }
        let mut actual_attributes = BTreeSet::new();
        for attribute in properties["AttributeDefinitions"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let name = attribute["AttributeName"].as_str().unwrap_or_default();
            if attribute["AttributeType"] != "S" {
                problems.push(format!(
                    "{id}: attribute {name} has type {}, but every key attribute is a String (S)",
                    attribute["AttributeType"]
                ));
            }
            actual_attributes.insert(name);
        }
        if actual_attributes != expected_attributes {
            problems.push(format!(
                "{id}: AttributeDefinitions are {actual_attributes:?}, expected the key attributes {expected_attributes:?}"
            ));
        }
    }
    problems
}

/// Checks each table's global secondary indexes.
fn check_table_indexes(template: &Template) -> Vec<String> {
    let mut problems = Vec::new();
    for (definition, id, properties) in defined_tables(template) {
        let mut actual = BTreeMap::new();
        for index in properties["GlobalSecondaryIndexes"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let name = index["IndexName"].as_str().unwrap_or_default().to_owned();
            if index["Projection"]["ProjectionType"] != "ALL" {
                problems.push(format!(
                    "{id}: index {name} projects {}, expected ALL",
                    index["Projection"]["ProjectionType"]
                ));
            }
            actual.insert(name, key_schema(&index["KeySchema"]));
        }
        for index in &definition.indexes {
            let expected_key = describe_key(index.hash, index.range);
            match actual.remove(index.name) {
                None => problems.push(format!(
                    "{id}: index {} ({expected_key}) is missing",
                    index.name
                )),
                Some(Err(problem)) => {
                    problems.push(format!("{id}: index {}: {problem}", index.name))
                }
                Some(Ok((hash, range))) => {
                    let actual_key = describe_key(&hash, range.as_deref());
                    if actual_key != expected_key {
                        problems.push(format!(
                            "{id}: index {} has key {actual_key}, expected {expected_key}",
                            index.name
                        ));
                    }
                }
            }
        }
        for name in actual.keys() {
            problems.push(format!(
                "{id}: index {name} is not in shared::tables::definitions"
            ));
        }
        if !properties["LocalSecondaryIndexes"].is_null() {
            problems.push(format!(
                "{id}: has LocalSecondaryIndexes, which shared::tables::definitions does not define"
            ));
        }
    }
    problems
}

/// Checks each table's stream.
fn check_table_streams(template: &Template) -> Vec<String> {
    let mut problems = Vec::new();
    for (definition, id, properties) in defined_tables(template) {
        let view_type = &properties["StreamSpecification"]["StreamViewType"];
        match (definition.stream, view_type.as_str()) {
            (true, Some("NEW_AND_OLD_IMAGES")) | (false, None) => {}
            (true, _) => problems.push(format!(
                "{id}: StreamViewType is {view_type}, expected NEW_AND_OLD_IMAGES"
            )),
            (false, Some(_)) => problems.push(format!(
                "{id}: has a stream, which shared::tables::definitions does not define"
            )),
        }
    }
    problems
}

/// Checks each table's TTL.
fn check_table_ttl(template: &Template) -> Vec<String> {
    let mut problems = Vec::new();
    for (definition, id, properties) in defined_tables(template) {
        let ttl = &properties["TimeToLiveSpecification"];
        let enabled = ttl["Enabled"] == true;
        if definition.ttl {
            if !enabled || ttl["AttributeName"] != tables::TTL_ATTRIBUTE {
                problems.push(format!(
                    "{id}: TimeToLiveSpecification is {ttl}, expected AttributeName {} and Enabled true",
                    tables::TTL_ATTRIBUTE
                ));
            }
        } else if enabled {
            problems.push(format!(
                "{id}: TTL is on, which shared::tables::definitions does not define"
            ));
        }
    }
    problems
}

/// Checks that the stream's event source mapping invokes the fan-out function
/// and honours the partial batch failures it reports.
fn check_stream_mapping(template: &Template) -> Vec<String> {
    let functions = template.functions();
    let Some(fanout_id) = functions.get(FANOUT_FUNCTION) else {
        return vec![format!("no function resource builds {FANOUT_FUNCTION}")];
    };
    let mut problems = Vec::new();
    for definition in definitions()
        .into_iter()
        .filter(|definition| definition.stream)
    {
        let table_id = table_resource_id(&definition);
        let mappings: Vec<(&str, &Value)> = template
            .resources_of_type("AWS::Lambda::EventSourceMapping")
            .filter(|(_, mapping)| {
                get_att(&mapping["Properties"]["EventSourceArn"]) == Some((&table_id, "StreamArn"))
            })
            .collect();
        let [(mapping_id, mapping)] = mappings.as_slice() else {
            problems.push(format!(
                "{table_id}: expected one AWS::Lambda::EventSourceMapping on its stream, found {}",
                mappings.len()
            ));
            continue;
        };
        let properties = &mapping["Properties"];
        if ref_target(&properties["FunctionName"]) != Some(fanout_id.as_str()) {
            problems.push(format!(
                "{mapping_id}: FunctionName is {}, expected !Ref {fanout_id}",
                properties["FunctionName"]
            ));
        }
        let reports_failures = properties["FunctionResponseTypes"]
            .as_array()
            .is_some_and(|types| types.iter().any(|kind| kind == "ReportBatchItemFailures"));
        if !reports_failures {
            problems.push(format!(
                "{mapping_id}: FunctionResponseTypes lacks ReportBatchItemFailures, \
                 so Lambda ignores the batchItemFailures that {FANOUT_FUNCTION} returns"
            ));
        }
    }
    problems
}

/// Checks that the attachments bucket notifies the upload function.
fn check_upload_notification(template: &Template) -> Vec<String> {
    let functions = template.functions();
    let Some(upload_id) = functions.get(UPLOAD_FUNCTION) else {
        return vec![format!("no function resource builds {UPLOAD_FUNCTION}")];
    };
    let notified = template
        .resources_of_type("AWS::S3::Bucket")
        .flat_map(|(_, bucket)| {
            bucket["Properties"]["NotificationConfiguration"]["LambdaConfigurations"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .any(|configuration| {
            get_att(&configuration["Function"]) == Some((upload_id.as_str(), "Arn"))
                && configuration["Event"]
                    .as_str()
                    .is_some_and(|event| event.starts_with("s3:ObjectCreated:"))
        });
    if notified {
        Vec::new()
    } else {
        vec![format!(
            "no AWS::S3::Bucket sends s3:ObjectCreated notifications to {upload_id}"
        )]
    }
}

// ---------------------------------------------------------------------------
// Tests of the template
// ---------------------------------------------------------------------------

#[test]
fn functions_match_crates() {
    assert_no_problems(
        "function resources and functions/",
        &check_function_crates(template(), &function_crates()),
    );
}

#[test]
fn environment_matches_config() {
    assert_no_problems(
        "environment variables and shared::config",
        &check_environment(template()),
    );
}

#[test]
fn table_variables_name_their_tables() {
    assert_no_problems("table variables", &check_table_variables(template()));
}

#[test]
fn websocket_endpoint_points_at_stage() {
    assert_no_problems("WEBSOCKET_ENDPOINT", &check_websocket_endpoint(template()));
}

#[test]
fn websocket_route_keys_match_code() {
    assert_no_problems(
        "WebSocket route keys",
        &check_websocket_route_keys(template()),
    );
}

#[test]
fn websocket_routes_have_integrations() {
    assert_no_problems(
        "WebSocket integrations",
        &check_websocket_integrations(template()),
    );
}

#[test]
fn websocket_two_way_routes_have_responses() {
    assert_no_problems(
        "WebSocket route responses",
        &check_websocket_route_responses(template()),
    );
}

#[test]
fn websocket_routes_have_permissions() {
    assert_no_problems(
        "WebSocket invoke permissions",
        &check_websocket_permissions(template()),
    );
}

#[test]
fn websocket_stage_auto_deploys() {
    assert_no_problems("WebSocket stage", &check_websocket_stage(template()));
}

#[test]
fn websocket_payloads_use_template_routes() {
    assert_no_problems(
        "events/ws-*.json route keys",
        &check_websocket_payloads(template(), &event_payloads()),
    );
}

#[test]
fn http_routes_match_code() {
    assert_no_problems("HTTP routes", &check_http_routes(template()));
}

#[test]
fn http_payloads_use_template_routes() {
    assert_no_problems(
        "events/*.json HTTP requests",
        &check_http_payloads(template(), &event_payloads()),
    );
}

#[test]
fn tables_match_definitions() {
    assert_no_problems("table resources", &check_table_set(template()));
}

#[test]
fn table_keys_match_definitions() {
    assert_no_problems("table keys", &check_table_keys(template()));
}

#[test]
fn table_indexes_match_definitions() {
    assert_no_problems("table indexes", &check_table_indexes(template()));
}

#[test]
fn table_streams_match_definitions() {
    assert_no_problems("table streams", &check_table_streams(template()));
}

#[test]
fn table_ttl_matches_definitions() {
    assert_no_problems("table TTL", &check_table_ttl(template()));
}

#[test]
fn stream_invokes_fanout() {
    assert_no_problems(
        "stream event source mapping",
        &check_stream_mapping(template()),
    );
}

#[test]
fn bucket_notifies_upload_complete() {
    assert_no_problems(
        "attachments notification",
        &check_upload_notification(template()),
    );
}

// ---------------------------------------------------------------------------
// Tests of the checks: each breaks a copy of the template and expects the
// matching check to report it.
// ---------------------------------------------------------------------------

/// Clones the template under test.
fn template_copy() -> Template {
    template().clone()
}

fn websocket_route_id(template: &Template, key: &str) -> String {
    template
        .find(|resource| {
            resource["Type"] == "AWS::ApiGatewayV2::Route"
                && resource["Properties"]["RouteKey"] == key
        })
        .unwrap_or_else(|| panic!("the template has no route {key}"))
}

fn function_id(template: &Template, name: &str) -> String {
    template
        .functions()
        .remove(name)
        .unwrap_or_else(|| panic!("the template has no function {name}"))
}

fn table_properties<'a>(template: &'a mut Template, logical: &str) -> &'a mut Value {
    let id = format!("{logical}Table");
    template
        .resources_mut()
        .get_mut(&id)
        .unwrap_or_else(|| panic!("the template has no {id}"))
        .get_mut("Properties")
        .expect("a table with Properties")
}

fn assert_reported(problems: &[String], expected: &str) {
    assert!(
        problems.iter().any(|problem| problem.contains(expected)),
        "expected a problem containing {expected:?}, got {problems:?}"
    );
}

#[test]
fn yaml_tags_become_long_forms() {
    let parsed = Template::parse(
        "Resources:\n  A:\n    Value: [!Ref X, !GetAtt T.StreamArn, !Sub 'a-${X}', !Not [!Equals [1, 2]]]\n",
    )
    .expect("valid YAML");
    assert_eq!(
        parsed.root["Resources"]["A"]["Value"],
        json!([
            { "Ref": "X" },
            { "Fn::GetAtt": ["T", "StreamArn"] },
            { "Fn::Sub": "a-${X}" },
            { "Fn::Not": [{ "Fn::Equals": [1, 2] }] },
        ])
    );
}

#[test]
fn missing_function_resource_is_reported() {
    let mut broken = template_copy();
    let id = function_id(&broken, "ws-ack");
    broken.resources_mut().remove(&id);
    assert_reported(
        &check_function_crates(&broken, &function_crates()),
        "functions/ws-ack has no AWS::Serverless::Function",
    );
}

#[test]
fn function_without_crate_is_reported() {
    let mut crates = function_crates();
    crates.remove("ws-ack");
    assert_reported(
        &check_function_crates(template(), &crates),
        "builds binary ws-ack, but functions/ws-ack does not exist",
    );
}

#[test]
fn removed_variable_is_reported() {
    let mut broken = template_copy();
    let id = function_id(&broken, HTTP_FUNCTION);
    let variables = broken.resources_mut()[&id]["Properties"]["Environment"]["Variables"]
        .as_object_mut()
        .expect("http-api sets variables of its own");
    variables.remove(shared::config::var::JWKS_URL);
    assert_reported(
        &check_environment(&broken),
        "http-api (HttpApiFunction): the code reads JWKS_URL, which the template does not set",
    );
}

#[test]
fn removed_global_variable_is_reported() {
    let mut broken = template_copy();
    broken.root["Globals"]["Function"]["Environment"]["Variables"]
        .as_object_mut()
        .expect("Globals set the table variables")
        .remove(shared::config::var::INBOX_TABLE);
    assert_reported(
        &check_environment(&broken),
        "the code reads INBOX_TABLE, which the template does not set",
    );
}

#[test]
fn unread_variable_is_reported() {
    let mut broken = template_copy();
    let id = function_id(&broken, "ws-ack");
    broken.resources_mut()[&id]["Properties"]["Environment"] =
        json!({ "Variables": { "UNUSED_SETTING": "1" } });
    assert_reported(
        &check_environment(&broken),
        "ws-ack (WsAckFunction): the template sets UNUSED_SETTING, which the code does not read",
    );
}

#[test]
fn swapped_table_variable_is_reported() {
    let mut broken = template_copy();
    broken.root["Globals"]["Function"]["Environment"]["Variables"]["INBOX_TABLE"] =
        json!({ "Ref": "MessagesTable" });
    assert_reported(
        &check_table_variables(&broken),
        "INBOX_TABLE is {\"Ref\":\"MessagesTable\"}, expected !Ref InboxTable",
    );
}

#[test]
fn wrong_websocket_endpoint_is_reported() {
    let mut broken = template_copy();
    let id = function_id(&broken, FANOUT_FUNCTION);
    broken.resources_mut()[&id]["Properties"]["Environment"]["Variables"]["WEBSOCKET_ENDPOINT"] = json!({ "Fn::Sub": "https://${WebSocketApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}" });
    assert_reported(&check_websocket_endpoint(&broken), "stream-fanout");
}

#[test]
fn removed_route_is_reported() {
    let mut broken = template_copy();
    let id = websocket_route_id(&broken, frame_type::SUBSCRIBE);
    broken.resources_mut().remove(&id);
    assert_reported(
        &check_websocket_route_keys(&broken),
        "route subscribe: served by ws-subscribe in the code, missing from",
    );
}

#[test]
fn extra_route_is_reported() {
    let mut broken = template_copy();
    let id = websocket_route_id(&broken, frame_type::SUBSCRIBE);
    let mut extra = broken.resources_mut()[&id].clone();
    extra["Properties"]["RouteKey"] = json!("typing");
    broken
        .resources_mut()
        .insert("TypingRoute".to_owned(), extra);
    assert_reported(
        &check_websocket_route_keys(&broken),
        "route typing (TypingRoute): no handler in the code serves it",
    );
}

#[test]
fn route_to_wrong_function_is_reported() {
    let mut broken = template_copy();
    let unsubscribe = websocket_route_id(&broken, frame_type::UNSUBSCRIBE);
    let ack = websocket_route_id(&broken, frame_type::ACK);
    let ack_target = broken.resources_mut()[&ack]["Properties"]["Target"].clone();
    broken.resources_mut()[&unsubscribe]["Properties"]["Target"] = ack_target;
    assert_reported(
        &check_websocket_integrations(&broken),
        "invokes ws-ack, expected ws-subscribe",
    );
}

#[test]
fn removed_integration_is_reported() {
    let mut broken = template_copy();
    let route = websocket_route_id(&broken, frame_type::MESSAGE);
    let target = broken.resources_mut()[&route]["Properties"]["Target"].clone();
    let integration = sub_string(&target)
        .and_then(|text| text.strip_prefix("integrations/${"))
        .and_then(|text| text.strip_suffix('}'))
        .expect("the message route targets an integration")
        .to_owned();
    broken.resources_mut().remove(&integration);
    assert_reported(
        &check_websocket_integrations(&broken),
        "is not an AWS::ApiGatewayV2::Integration",
    );
}

#[test]
fn removed_route_response_is_reported() {
    let mut broken = template_copy();
    let route = websocket_route_id(&broken, frame_type::ACK);
    let response = broken
        .find(|resource| {
            resource["Type"] == "AWS::ApiGatewayV2::RouteResponse"
                && ref_target(&resource["Properties"]["RouteId"]) == Some(route.as_str())
        })
        .expect("the ack route has a route response");
    broken.resources_mut().remove(&response);
    assert_reported(
        &check_websocket_route_responses(&broken),
        "route ack-message-received (AckMessageReceivedRoute): no AWS::ApiGatewayV2::RouteResponse",
    );
}

#[test]
fn one_way_route_is_reported() {
    let mut broken = template_copy();
    let route = websocket_route_id(&broken, "$default");
    broken.resources_mut()[&route]["Properties"]
        .as_object_mut()
        .expect("route properties")
        .remove("RouteResponseSelectionExpression");
    assert_reported(
        &check_websocket_route_responses(&broken),
        "route $default (DefaultRoute): RouteResponseSelectionExpression is null",
    );
}

#[test]
fn removed_permission_is_reported() {
    let mut broken = template_copy();
    let connect = function_id(&broken, "ws-connect");
    let permission = broken
        .find(|resource| {
            resource["Type"] == "AWS::Lambda::Permission"
                && ref_target(&resource["Properties"]["FunctionName"]) == Some(connect.as_str())
        })
        .expect("ws-connect has an invoke permission");
    broken.resources_mut().remove(&permission);
    assert_reported(
        &check_websocket_permissions(&broken),
        "route $connect (ConnectRoute): no AWS::Lambda::Permission",
    );
}

#[test]
fn unknown_payload_route_is_reported() {
    let payloads = vec![(
        "ws-typing.json".to_owned(),
        json!({ "requestContext": { "routeKey": "typing" } }),
    )];
    assert_reported(
        &check_websocket_payloads(template(), &payloads),
        "events/ws-typing.json: route key typing is not a route of",
    );
}

#[test]
fn removed_http_route_is_reported() {
    let mut broken = template_copy();
    let id = function_id(&broken, HTTP_FUNCTION);
    let events = broken.resources_mut()[&id]["Properties"]["Events"]
        .as_object_mut()
        .expect("http-api has events");
    let removed = events
        .iter()
        .find(|(_, event)| event["Properties"]["Path"] == "/chats/{chat_id}/members/{user_id}")
        .map(|(name, _)| name.clone())
        .expect("the template routes DELETE /chats/{chat_id}/members/{user_id}");
    events.remove(&removed);
    assert_reported(
        &check_http_routes(&broken),
        "route DELETE /chats/{chat_id}/members/{user_id}: served by http-api in the code, missing",
    );
}

#[test]
fn unserved_http_route_is_reported() {
    let mut broken = template_copy();
    let id = function_id(&broken, HTTP_FUNCTION);
    broken.resources_mut()[&id]["Properties"]["Events"]["Typing"] = json!({
        "Type": "HttpApi",
        "Properties": { "ApiId": { "Ref": "HttpApi" }, "Method": "POST", "Path": "/chats/{chat_id}/typing" },
    });
    assert_reported(
        &check_http_routes(&broken),
        "route POST /chats/{chat_id}/typing: in the template, but http-api does not serve it",
    );
}

#[test]
fn unrouted_http_payload_is_reported() {
    let payloads = vec![
        (
            "http-ok.json".to_owned(),
            json!({
                "rawPath": "/prod/chats/chat-1/members/bob",
                "requestContext": { "stage": "prod", "http": { "method": "DELETE" } },
            }),
        ),
        (
            "http-unrouted.json".to_owned(),
            json!({
                "rawPath": "/chats/chat-1/typing",
                "requestContext": { "stage": "$default", "http": { "method": "POST" } },
            }),
        ),
    ];
    let problems = check_http_payloads(template(), &payloads);
    assert_eq!(
        problems,
        vec!["events/http-unrouted.json: POST /chats/chat-1/typing matches no HttpApi route of the template".to_owned()]
    );
}

#[test]
fn changed_index_is_reported() {
    let mut broken = template_copy();
    let properties = table_properties(&mut broken, "Memberships");
    properties["GlobalSecondaryIndexes"][0]["IndexName"] = json!("by_chat_id");
    let problems = check_table_indexes(&broken);
    assert_reported(
        &problems,
        "MembershipsTable: index by_chat (chat_id + user_id) is missing",
    );
    assert_reported(&problems, "MembershipsTable: index by_chat_id is not in");
}

#[test]
fn changed_key_is_reported() {
    let mut broken = template_copy();
    let properties = table_properties(&mut broken, "Inbox");
    properties["KeySchema"][1]["AttributeName"] = json!("created_at");
    assert_reported(
        &check_table_keys(&broken),
        "InboxTable: key is recipient_id + created_at, expected recipient_id + message_id",
    );
}

#[test]
fn removed_stream_is_reported() {
    let mut broken = template_copy();
    table_properties(&mut broken, "Messages")
        .as_object_mut()
        .expect("table properties")
        .remove("StreamSpecification");
    assert_reported(
        &check_table_streams(&broken),
        "MessagesTable: StreamViewType is null, expected NEW_AND_OLD_IMAGES",
    );
}

#[test]
fn removed_ttl_is_reported() {
    let mut broken = template_copy();
    table_properties(&mut broken, "Tickets")
        .as_object_mut()
        .expect("table properties")
        .remove("TimeToLiveSpecification");
    assert_reported(
        &check_table_ttl(&broken),
        "TicketsTable: TimeToLiveSpecification is null",
    );
}

#[test]
fn missing_table_is_reported() {
    let mut broken = template_copy();
    broken.resources_mut().remove("ClientMessagesTable");
    assert_reported(
        &check_table_set(&broken),
        "ClientMessagesTable: missing from the template",
    );
}

#[test]
fn ignored_batch_failures_are_reported() {
    let mut broken = template_copy();
    let mapping = broken
        .find(|resource| resource["Type"] == "AWS::Lambda::EventSourceMapping")
        .expect("the template has an event source mapping");
    broken.resources_mut()[&mapping]["Properties"]
        .as_object_mut()
        .expect("mapping properties")
        .remove("FunctionResponseTypes");
    assert_reported(
        &check_stream_mapping(&broken),
        "FunctionResponseTypes lacks ReportBatchItemFailures",
    );
}
