//! `engine run` against a scripted loopback API: the Entra ID and Okta specs end to end, and the runtime's
//! promises (one token, host pinning, retries, status policies, incremental windows, resume).

use crate::TempDir;
use crate::server::{Reply, Seen, Server};
use engine::config::{self, RunConfig};
use engine::model::Shape;
use engine::model::Spec;
use engine::run::{RunOptions, RunReport, run};
use engine::source::Source;
use engine::store::{ResourceStatus, RunStatus, Store};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

const TENANT: &str = "contoso.onmicrosoft.com";
/// 2025-06-30T12:00:00Z
const NOW_MS: i64 = 1_751_284_800_000;

fn spec(id: &str) -> Spec {
    let path = crate::repo_path(&format!("specs/{id}.yaml"));
    let validated = engine::validate::validate(&Source::read(&path).expect("spec readable"));
    validated.spec.expect("spec valid")
}

fn entra_config(spec: &Spec, base: &str, extra: &str) -> RunConfig {
    let text = format!(
        "instance: contoso\nconfig:\n  tenant_id: {TENANT}\n  client_id: 11111111-2222-3333-4444-555555555555\n  \
         client_secret: {{ env: TEST_SECRET }}\n  graph_base_url: {base}/v1.0\n  login_base_url: {base}\n{extra}"
    );
    config::load(&Source::new("config.yaml", text), spec, &|name| {
        (name == "TEST_SECRET").then(|| "s3cret-value".to_string())
    })
    .unwrap_or_else(|d| panic!("config: {d:?}"))
}

/// A fresh store in a directory of its own; keep the directory alive as long as the store is used.
fn temp_store(name: &str) -> (Store, TempDir) {
    let dir = TempDir::new(&format!("run-test-{name}"));
    (Store::open(dir.store()).expect("store"), dir)
}

fn options() -> RunOptions {
    RunOptions { now_ms: NOW_MS, ..RunOptions::default() }
}

fn page(value: Vec<Value>, next: Option<String>) -> Reply {
    let mut body = json!({ "@odata.context": "ctx", "value": value });
    if let Some(next) = next {
        body["@odata.nextLink"] = Value::String(next);
    }
    Reply::json(body)
}

fn users() -> Vec<Value> {
    vec![
        json!({"id": "u1", "displayName": "Ada", "userPrincipalName": "ada@contoso.com", "mail": "ada@contoso.com",
               "accountEnabled": true, "userType": "Member", "createdDateTime": "2020-01-02T03:04:05Z",
               "signInActivity": {"lastSignInDateTime": "2025-06-29T10:00:00.1234567Z"}}),
        json!({"id": "u2", "displayName": "Gus", "userPrincipalName": "gus_x.com#EXT#@contoso.com", "mail": null,
               "accountEnabled": true, "userType": "Guest", "createdDateTime": "2021-05-06T07:08:09Z",
               "signInActivity": null}),
        json!({"id": "u3", "displayName": "Dee", "userPrincipalName": "dee@contoso.com", "mail": "dee@contoso.com",
               "accountEnabled": false, "userType": "Member", "createdDateTime": null}),
    ]
}

fn signins() -> Vec<Value> {
    vec![
        json!({"id": "s1", "createdDateTime": "2025-06-30T09:00:00.5Z", "userId": "u1", "userPrincipalName": "ada@contoso.com",
               "appId": "app1", "appDisplayName": "Portal", "ipAddress": "10.0.0.1", "clientAppUsed": "Browser",
               "conditionalAccessStatus": "success", "riskLevelAggregated": "none", "riskState": "none",
               "status": {"errorCode": 0, "failureReason": null}, "location": {"city": "Oslo", "countryOrRegion": "NO"}}),
        json!({"id": "s2", "createdDateTime": "2025-06-30T10:00:00Z", "userId": "u1", "userPrincipalName": "ada@contoso.com",
               "appId": "app1", "appDisplayName": "Portal", "ipAddress": "10.0.0.2", "clientAppUsed": "Browser",
               "conditionalAccessStatus": "failure", "riskLevelAggregated": "high", "riskState": "atRisk",
               "status": {"errorCode": 50126, "failureReason": "Invalid username or password."}, "location": null}),
        json!({"id": "s3", "createdDateTime": "2025-06-30T11:00:00Z", "userId": "u2", "status": null, "location": null}),
    ]
}

/// A small healthy tenant. `tweak` may answer a request instead (for faults), returning `Some`.
fn tenant(
    tweak: impl Fn(&Seen, &str) -> Option<Reply> + Send + Sync + 'static,
) -> impl Fn(&Seen, &str) -> Reply + Send + Sync + 'static {
    move |seen, base| {
        if let Some(reply) = tweak(seen, base) {
            return reply;
        }
        let graph = format!("{base}/v1.0");
        match seen.path.as_str() {
            p if p.ends_with("/oauth2/v2.0/token") => {
                Reply::json(json!({"token_type": "Bearer", "expires_in": 3599, "access_token": "tok-1"}))
            }
            "/v1.0/organization" => page(
                vec![json!({"id": "t1", "displayName": "Contoso", "tenantType": "AAD", "verifiedDomains": []})],
                None,
            ),
            "/v1.0/users" => match seen.param("$skiptoken").as_deref() {
                None => page(users()[..2].to_vec(), Some(format!("{graph}/users?$select=x&$skiptoken=p2"))),
                Some(_) => page(users()[2..].to_vec(), None),
            },
            "/v1.0/auditLogs/signIns" => page(signins(), None),
            "/v1.0/identityProtection/riskyUsers" => page(
                vec![
                    json!({"id": "u1", "userPrincipalName": "ada@contoso.com", "userDisplayName": "Ada", "riskLevel": "high",
                            "riskState": "atRisk", "riskDetail": "none", "riskLastUpdatedDateTime": "2025-06-29T00:00:00Z"}),
                ],
                None,
            ),
            "/v1.0/directoryRoles" => {
                page(vec![json!({"id": "r1", "displayName": "Global Administrator", "roleTemplateId": "62e9"})], None)
            }
            "/v1.0/directoryRoles/r1/members" => page(
                vec![
                    json!({"@odata.type": "#microsoft.graph.user", "id": "u1", "displayName": "Ada", "userPrincipalName": "ada@contoso.com"}),
                    json!({"@odata.type": "#microsoft.graph.servicePrincipal", "id": "sp1", "displayName": "Automation"}),
                ],
                None,
            ),
            "/v1.0/auditLogs/directoryAudits" => page(
                vec![
                    json!({"id": "a1", "activityDateTime": "2025-06-30T08:00:00Z", "activityDisplayName": "Add member to role",
                            "category": "RoleManagement", "result": "success", "initiatedBy": {"user": {"id": "u1"}},
                            "targetResources": [{"id": "u2"}]}),
                ],
                None,
            ),
            "/v1.0/identity/conditionalAccess/policies" => page(
                vec![json!({"id": "p1", "displayName": "MFA for all", "state": "enabled",
                            "conditions": {"users": {"includeUsers": ["All"], "excludeUsers": []}},
                            "grantControls": {"operator": "OR", "builtInControls": ["mfa"]}})],
                None,
            ),
            "/v1.0/reports/authenticationMethods/userRegistrationDetails" => page(
                vec![
                    json!({"id": "u1", "userPrincipalName": "ada@contoso.com", "isMfaRegistered": true, "isMfaCapable": true}),
                ],
                None,
            ),
            _ => Reply::status(404, json!({"error": {"code": "NotFound", "message": "no such path"}})),
        }
    }
}

fn rows(store: &Store, shape: Shape, name: &str) -> Vec<Value> {
    let mut out = Vec::new();
    store
        .for_each_row("contoso", shape, name, |row| {
            let mut object = serde_json::Map::new();
            for field in shape_fields(shape) {
                object.insert(field.to_string(), row.field(field).unwrap_or(Value::Null));
            }
            object.insert("attributes".into(), Value::Object(row.attributes));
            out.push(Value::Object(object));
            Ok::<(), engine::store::StoreError>(())
        })
        .expect("read");
    out
}

fn shape_fields(shape: Shape) -> &'static [&'static str] {
    match shape {
        Shape::Entity => &["id"],
        Shape::Event => &["key", "start"],
        Shape::Edge => &["from_id", "to_type", "to_id"],
        _ => &[],
    }
}

async fn entra_run(server: &Server, store: &mut Store, extra: &str) -> RunReport {
    let spec = spec("entra-id");
    let config = entra_config(&spec, &server.base, extra);
    run(&spec, &config, store, options()).await.expect("run")
}

fn status_of(report: &RunReport, resource: &str) -> ResourceStatus {
    report.resource(resource).unwrap_or_else(|| panic!("{resource} not in report")).status
}

#[tokio::test]
async fn a_healthy_tenant_syncs_every_resource_with_one_token() {
    let server = Server::start(tenant(|_, _| None)).await;
    let (mut store, _dir) = temp_store("healthy");
    let report = entra_run(&server, &mut store, "").await;
    assert_eq!(report.status, RunStatus::Ok, "{report:#?}");
    let tokens = server.requests_to("/oauth2/v2.0/token");
    assert_eq!(tokens.len(), 1, "one token for the whole run");
    assert_eq!(tokens[0].path, format!("/{TENANT}/oauth2/v2.0/token"), "the token URL is tenant-scoped");
    assert_eq!(tokens[0].method, "POST");
    assert!(tokens[0].body.contains("grant_type=client_credentials"));
    assert!(tokens[0].body.contains(&format!(
        "scope={}",
        url::form_urlencoded::byte_serialize(format!("{}/.default", server.base).as_bytes()).collect::<String>()
    )));
    for request in server.requests().iter().filter(|r| r.path.starts_with("/v1.0/")) {
        assert_eq!(request.header("authorization"), Some("Bearer tok-1"), "bearer on {}", request.path);
    }
    assert_eq!(report.resource("users").unwrap().pages, 2, "the next link was followed to the end");
    assert_eq!(report.resource("users").unwrap().records, 3);

    let users = rows(&store, Shape::Entity, "entra_user");
    assert_eq!(users.len(), 3);
    assert_eq!(
        users[0],
        json!({"id": "u1", "attributes": {"displayName": "Ada", "userPrincipalName": "ada@contoso.com", "mail": "ada@contoso.com",
               "accountEnabled": true, "userType": "Member", "createdAt": 1_577_934_245_000i64, "lastSignInAt": 1_751_191_200_123i64}})
    );
    assert_eq!(users[1]["attributes"]["lastSignInAt"], Value::Null, "null signInActivity gives null");
    assert_eq!(users[2]["attributes"]["createdAt"], Value::Null);

    let events = rows(&store, Shape::Event, "entra_signin_event");
    let by_key = |k: &str| events.iter().find(|e| e["key"] == k).cloned().unwrap_or_else(|| panic!("{k}"));
    let s1 = by_key("s1");
    assert_eq!(s1["start"], json!(1_751_274_000_500i64));
    assert_eq!(
        s1["attributes"],
        json!({"errorCode": 0, "status": "success", "failureReason": null, "userId": "u1", "userPrincipalName": "ada@contoso.com",
               "appId": "app1", "appDisplayName": "Portal", "ipAddress": "10.0.0.1", "countryOrRegion": "NO", "city": "Oslo",
               "riskLevel": "none", "riskState": "none", "clientAppUsed": "Browser", "conditionalAccessStatus": "success"})
    );
    let s2 = by_key("s2");
    assert_eq!(s2["attributes"]["status"], "failure");
    assert_eq!(s2["attributes"]["riskLevel"], "high", "riskLevel comes from riskLevelAggregated");
    assert_eq!(s2["attributes"]["countryOrRegion"], Value::Null, "null location gives null place");
    assert_eq!(by_key("s3")["attributes"]["status"], Value::Null, "null status is neither success nor failure");

    let risky = rows(&store, Shape::Entity, "entra_risky_user");
    assert_eq!(
        risky[0]["attributes"],
        json!({"userPrincipalName": "ada@contoso.com", "displayName": "Ada", "riskLevel": "high", "riskState": "atRisk",
               "riskDetail": "none", "riskLastUpdatedAt": 1_751_155_200_000i64})
    );
    let edges = rows(&store, Shape::Edge, "has_member");
    assert_eq!(edges.len(), 2, "users and service principals are both kept as edges");
    assert_eq!(edges.iter().filter(|e| e["attributes"]["memberType"] == "#microsoft.graph.user").count(), 1);

    let signin_requests = server.requests_to("/auditLogs/signIns");
    assert_eq!(
        signin_requests[0].param("$filter").as_deref(),
        Some("createdDateTime ge 2025-06-23T12:00:00Z"),
        "the first window is the 7-day backfill"
    );
}

#[tokio::test]
async fn the_resources_allowlist_limits_what_is_read() {
    let server = Server::start(tenant(|_, _| None)).await;
    let (mut store, _dir) = temp_store("allowlist");
    let report = entra_run(&server, &mut store, "  resources: [users]\n").await;
    assert_eq!(report.resources.iter().map(|r| r.resource.as_str()).collect::<Vec<_>>(), ["users"]);
    assert!(server.requests().iter().all(|r| r.path.contains("/token") || r.path == "/v1.0/users"));
}

#[tokio::test]
async fn a_second_run_is_incremental_and_changes_nothing() {
    let server = Server::start(tenant(|_, _| None)).await;
    let (mut store, _dir) = temp_store("incremental");
    entra_run(&server, &mut store, "").await;
    let second = entra_run(&server, &mut store, "").await;
    assert_eq!(second.status, RunStatus::Ok);
    for resource in &second.resources {
        assert_eq!(resource.written, 0, "{} rewrote rows that did not change", resource.resource);
    }
    let filters: Vec<String> =
        server.requests_to("/auditLogs/signIns").iter().filter_map(|r| r.param("$filter")).collect();
    // The saved cursor is the newest sign-in (11:00), re-read with the spec's 15-minute lookback.
    assert_eq!(filters[1], "createdDateTime ge 2025-06-30T10:45:00Z");
    assert_eq!(rows(&store, Shape::Entity, "entra_user").len(), 3, "an incremental run removes no entities");
    assert_eq!(rows(&store, Shape::Event, "entra_signin_event").len(), 3, "no duplicate events");
}

#[tokio::test]
async fn events_before_the_window_are_dropped_on_the_client() {
    let server = Server::start(tenant(|seen, _| {
        (seen.path == "/v1.0/auditLogs/signIns").then(|| {
            let mut old = signins();
            old.push(json!({"id": "s0", "createdDateTime": "2025-06-01T00:00:00Z", "userId": "u1", "status": {"errorCode": 0}}));
            page(old, None)
        })
    }))
    .await;
    let (mut store, _dir) = temp_store("client-filter");
    entra_run(&server, &mut store, "").await;
    let keys: Vec<Value> = rows(&store, Shape::Event, "entra_signin_event").iter().map(|e| e["key"].clone()).collect();
    assert!(!keys.contains(&json!("s0")), "a record older than the window is dropped even when the API sends it");
}

#[tokio::test]
async fn the_lookback_is_capped_by_the_retention() {
    let server = Server::start(tenant(|_, _| None)).await;
    let (mut store, _dir) = temp_store("cap");
    entra_run(&server, &mut store, "  signins_lookback_days: 30\n").await;
    let filter = server.requests_to("/auditLogs/signIns")[0].param("$filter").unwrap();
    // 30 days asked; the spec's max_age of 29d23h wins.
    assert_eq!(filter, "createdDateTime ge 2025-05-31T13:00:00Z");
}

#[tokio::test]
async fn an_off_host_next_link_is_refused_and_never_requested() {
    let other = Server::start(|_, _| Reply::json(json!({"value": []}))).await;
    let other_base = other.base.clone();
    let server = Server::start(tenant(move |seen, _| {
        (seen.path == "/v1.0/users")
            .then(|| page(users()[..1].to_vec(), Some(format!("{other_base}/v1.0/users?$skiptoken=evil"))))
    }))
    .await;
    let (mut store, _dir) = temp_store("offhost");
    let report = entra_run(&server, &mut store, "  resources: [users]\n").await;
    assert_eq!(status_of(&report, "users"), ResourceStatus::Failed);
    assert!(report.resource("users").unwrap().warnings.iter().any(|w| w.contains("does not allow")), "{report:#?}");
    assert!(other.requests().is_empty(), "the other host got a request");
    assert_eq!(report.status, RunStatus::Failed);
    assert_eq!(rows(&store, Shape::Entity, "entra_user").len(), 1, "the page before the bad link is kept");
}

#[tokio::test]
async fn throttling_and_unavailability_are_retried() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let server = Server::start(tenant(move |seen, _| {
        (seen.path == "/v1.0/organization").then(|| match counter.fetch_add(1, Ordering::SeqCst) {
            0 => Reply::status(429, json!({"error": {"code": "TooManyRequests"}})).header("Retry-After", "1"),
            1 => Reply::status(429, json!({"error": {"code": "TooManyRequests"}})),
            2 => Reply::status(503, json!({"error": {"code": "ServiceUnavailable"}})),
            _ => page(vec![json!({"id": "t1"})], None),
        })
    }))
    .await;
    let (mut store, _dir) = temp_store("retry");
    let started = std::time::Instant::now();
    let report = entra_run(&server, &mut store, "  resources: [organization]\n").await;
    assert_eq!(status_of(&report, "organization"), ResourceStatus::Ok, "{report:#?}");
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    assert!(started.elapsed() >= std::time::Duration::from_secs(1), "Retry-After was honoured");
}

#[tokio::test]
async fn a_401_mid_run_refreshes_the_token_once() {
    let failed_once = Arc::new(AtomicUsize::new(0));
    let flag = failed_once.clone();
    let server = Server::start(tenant(move |seen, _| {
        (seen.path == "/v1.0/directoryRoles" && flag.fetch_add(1, Ordering::SeqCst) == 0)
            .then(|| Reply::status(401, json!({"error": {"code": "InvalidAuthenticationToken"}})))
    }))
    .await;
    let (mut store, _dir) = temp_store("401");
    let report = entra_run(&server, &mut store, "  resources: [users, directory_roles]\n").await;
    assert_eq!(report.status, RunStatus::Ok, "{report:#?}");
    assert_eq!(server.requests_to("/oauth2/v2.0/token").len(), 2, "one mint, one refresh");
}

#[tokio::test]
async fn a_refused_token_is_a_fatal_explained_error_without_retries() {
    let server = Server::start(tenant(|seen, _| {
        seen.path.ends_with("/token").then(|| {
            Reply::status(
                401,
                json!({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided.",
                                     "error_codes": [7000215]}),
            )
        })
    }))
    .await;
    let (mut store, _dir) = temp_store("badsecret");
    let report = entra_run(&server, &mut store, "").await;
    assert_eq!(report.status, RunStatus::Failed);
    assert_eq!(server.requests_to("/token").len(), 1, "a refused secret is not retried");
    let text = format!("{report:?}");
    assert!(text.contains("secret"), "the spec's explanation is shown: {text}");
    assert!(!text.contains("s3cret-value"), "the secret never appears");
    assert!(server.requests().iter().all(|r| !r.path.starts_with("/v1.0/")), "no API call without a token");
}

#[tokio::test]
async fn a_malformed_page_fails_the_resource_and_keeps_what_was_committed() {
    let server = Server::start(tenant(|seen, _| {
        (seen.path == "/v1.0/users" && seen.param("$skiptoken").is_some()).then(|| Reply {
            status: 200,
            headers: vec![],
            body: "{\"value\": [ {\"id\": ".into(),
        })
    }))
    .await;
    let (mut store, dir) = temp_store("malformed");
    let report = entra_run(&server, &mut store, "  resources: [users]\n").await;
    let users = report.resource("users").unwrap();
    assert_eq!(users.status, ResourceStatus::Failed);
    assert!(users.warnings.iter().any(|w| w.contains("page 2") && w.contains("not valid JSON")), "{users:?}");
    assert_eq!(rows(&store, Shape::Entity, "entra_user").len(), 2, "page 1 stays committed");
    drop(store);
    let reopened = Store::open(dir.store()).expect("store");
    assert_eq!(rows(&reopened, Shape::Entity, "entra_user").len(), 2, "committed, not merely written");
}

/// Pages that arrive quickly share a transaction; while a response is slow to come, what was written is
/// committed, so another process sees it (and can write to the file) during the wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_written_before_a_slow_response_are_committed_while_it_is_awaited() {
    let (mut store, dir) = temp_store("slow-page");
    let path = dir.store();
    let seen_during_wait = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (flag, watched) = (seen_during_wait.clone(), path.clone());
    let server = Server::start(tenant(move |seen, _| {
        if seen.path != "/v1.0/users" || seen.param("$skiptoken").is_none() {
            return None;
        }
        // Hold the answer until page 1 is visible to another connection (at most 10 s), off the runtime's
        // workers so the engine's tasks keep running.
        tokio::task::block_in_place(|| {
            for _ in 0..200 {
                let other = Store::open(&watched).expect("another connection");
                let mut users = 0;
                other
                    .for_each_row("contoso", Shape::Entity, "entra_user", |_| {
                        users += 1;
                        Ok::<(), engine::store::StoreError>(())
                    })
                    .expect("read");
                if users > 0 {
                    flag.store(users, std::sync::atomic::Ordering::SeqCst);
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        });
        None
    }))
    .await;
    let report = entra_run(&server, &mut store, "  resources: [users]\n").await;
    assert_eq!(status_of(&report, "users"), ResourceStatus::Ok, "{report:#?}");
    assert_eq!(seen_during_wait.load(std::sync::atomic::Ordering::SeqCst), 2, "page 1 committed during the wait");
    drop(store);
    assert_eq!(rows(&Store::open(&path).expect("store"), Shape::Entity, "entra_user").len(), 3);
}

#[tokio::test]
async fn an_empty_page_with_a_next_link_does_not_end_paging() {
    let server = Server::start(tenant(|seen, base| {
        (seen.path == "/v1.0/users").then(|| match seen.param("$skiptoken").as_deref() {
            None => page(vec![], Some(format!("{base}/v1.0/users?$skiptoken=p2"))),
            Some(_) => page(users(), None),
        })
    }))
    .await;
    let (mut store, _dir) = temp_store("empty-page");
    let report = entra_run(&server, &mut store, "  resources: [users]\n").await;
    assert_eq!(report.resource("users").unwrap().records, 3);
}

#[tokio::test]
async fn a_tenant_without_premium_licence_degrades_instead_of_failing() {
    let server = Server::start(tenant(|seen, _| {
        let premium = json!({"error": {"code": "Authentication_RequestFromNonPremiumTenantOrB2CTenant", "message": "no premium"}});
        let selects_activity = seen.param("$select").is_some_and(|s| s.contains("signInActivity"));
        match seen.path.as_str() {
            "/v1.0/users" if selects_activity => Some(Reply::status(403, premium)),
            "/v1.0/auditLogs/signIns" | "/v1.0/reports/authenticationMethods/userRegistrationDetails" => Some(Reply::status(403, premium)),
            _ => None,
        }
    }))
    .await;
    let (mut store, _dir) = temp_store("nop1");
    let report = entra_run(&server, &mut store, "").await;
    assert_eq!(report.status, RunStatus::Degraded, "{report:#?}");
    assert_eq!(status_of(&report, "users"), ResourceStatus::Degraded, "users re-read without signInActivity");
    assert_eq!(status_of(&report, "signins"), ResourceStatus::NotApplicable);
    assert_eq!(status_of(&report, "mfa_registration"), ResourceStatus::NotApplicable);
    let fallback = server
        .requests_to("/v1.0/users")
        .into_iter()
        .find(|r| !r.param("$select").unwrap_or_default().contains("signInActivity"))
        .expect("a fallback read");
    assert_eq!(fallback.param("$top").as_deref(), Some("999"));
    assert_eq!(rows(&store, Shape::Entity, "entra_user").len(), 3);
}

#[tokio::test]
async fn an_interrupted_full_sync_resumes_and_ends_like_an_uninterrupted_one() {
    // Stop after the first page of users; the next run must continue from page 2, not start over.
    let server = Server::start(tenant(|_, _| None)).await;
    let (mut store, _dir) = temp_store("resume");
    let spec = spec("entra-id");
    let config = entra_config(&spec, &server.base, "  resources: [users]\n");
    let cancel = tokio_util::sync::CancellationToken::new();
    cancel.cancel();
    let first = run(&spec, &config, &mut store, RunOptions { cancel, ..options() }).await.unwrap();
    assert_eq!(first.status, RunStatus::Interrupted);
    assert_eq!(rows(&store, Shape::Entity, "entra_user").len(), 2);
    let second = run(&spec, &config, &mut store, options()).await.unwrap();
    assert_eq!(second.status, RunStatus::Ok, "{second:#?}");
    let user_pages: Vec<Option<String>> =
        server.requests_to("/v1.0/users").iter().map(|r| r.param("$skiptoken")).collect();
    assert_eq!(user_pages, [None, Some("p2".to_string())], "the second run continued at page 2");
    assert_eq!(rows(&store, Shape::Entity, "entra_user").len(), 3, "rows of the interrupted run were kept");

    let (mut clean, _clean_dir) = temp_store("resume-clean");
    run(&spec, &config, &mut clean, options()).await.unwrap();
    assert_eq!(rows(&store, Shape::Entity, "entra_user"), rows(&clean, Shape::Entity, "entra_user"));
}

#[tokio::test]
async fn vanished_entities_are_removed_after_a_complete_full_sync() {
    let gone = Arc::new(AtomicUsize::new(0));
    let flag = gone.clone();
    let server = Server::start(tenant(move |seen, _| {
        (seen.path == "/v1.0/users" && flag.load(Ordering::SeqCst) == 1).then(|| page(users()[..1].to_vec(), None))
    }))
    .await;
    let (mut store, _dir) = temp_store("vanish");
    entra_run(&server, &mut store, "  resources: [users]\n").await;
    gone.store(1, Ordering::SeqCst);
    entra_run(&server, &mut store, "  resources: [users]\n").await;
    assert_eq!(rows(&store, Shape::Entity, "entra_user").len(), 1);
}

#[tokio::test]
async fn okta_pages_through_link_headers() {
    let server = Server::start(|seen: &Seen, base: &str| match (seen.path.as_str(), seen.param("after")) {
        ("/api/v1/users", None) => {
            Reply::json(json!([{"id": "o1", "status": "ACTIVE", "created": "2024-01-01T00:00:00.000Z",
                                                        "profile": {"login": "a@x.com", "email": "a@x.com"}}]))
            .header("link", &format!("<{base}/api/v1/users?limit=200>; rel=\"self\""))
            .header("link", &format!("<{base}/api/v1/users?after=o1&limit=200>; rel=\"next\""))
        }
        ("/api/v1/users", Some(_)) => {
            Reply::json(json!([{"id": "o2", "status": "SUSPENDED", "created": "2024-02-01T00:00:00.000Z",
                                                           "profile": {"login": "b@x.com", "email": "b@x.com"}}]))
        }
        ("/api/v1/logs", _) => Reply::json(json!([])),
        _ => Reply::status(404, json!({"errorCode": "E0000007"})),
    })
    .await;
    let spec = spec("okta");
    let text = format!(
        "instance: contoso\nconfig:\n  okta_domain: acme.okta.com\n  api_base_url: {}\n  api_token: {{ env: T }}\n",
        server.base
    );
    let config = config::load(&Source::new("c.yaml", text), &spec, &|_| Some("tok".into())).expect("config");
    let (mut store, _dir) = temp_store("okta");
    let report = run(&spec, &config, &mut store, options()).await.expect("run");
    assert_eq!(report.resource("users").unwrap().pages, 2, "{report:#?}");
    let users = rows(&store, Shape::Entity, "okta_user");
    assert_eq!(users.iter().map(|u| u["id"].clone()).collect::<Vec<_>>(), [json!("o1"), json!("o2")]);
    let user_requests = server.requests_to("/api/v1/users");
    assert!(user_requests.iter().all(|r| r.header("authorization") == Some("SSWS tok")));
    let logs = server.requests_to("/api/v1/logs");
    assert_eq!(logs[0].param("since").as_deref(), Some("2025-06-23T12:00:00.000Z"));
}

/// An `engine` process killed while it waits for a page: the next run continues from the last committed
/// page and ends with the same rows as a run that was never interrupted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_process_resumes_and_ends_like_an_uninterrupted_run() {
    let (store, dir) = temp_store("killed");
    let path = dir.store();
    drop(store);
    // Page 2 of the users is held back while this is set (at most 10 s).
    let hold = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let gate = hold.clone();
    let server = Server::start(tenant(move |seen, _| {
        if seen.path == "/v1.0/users" && seen.param("$skiptoken").is_some() {
            tokio::task::block_in_place(|| {
                for _ in 0..200 {
                    if !gate.load(Ordering::SeqCst) {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
            });
        }
        None
    }))
    .await;
    let config_path = path.with_file_name("config.yaml");
    std::fs::write(
        &config_path,
        format!(
            "instance: contoso\nconfig:\n  tenant_id: {TENANT}\n  client_id: 11111111-2222-3333-4444-555555555555\n  \
             client_secret: {{ env: TEST_SECRET }}\n  graph_base_url: {0}/v1.0\n  login_base_url: {0}\n  \
             resources: [users]\n",
            server.base
        ),
    )
    .expect("config written");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_engine"))
        .arg("run")
        .arg(crate::repo_path("specs/entra-id.yaml"))
        .arg("--config")
        .arg(&config_path)
        .arg("--store")
        .arg(&path)
        .args(["--now", "2025-06-30T12:00:00Z"])
        .env("TEST_SECRET", "s3cret-value")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("engine starts");
    // Kill it once page 1 is committed, while it waits for page 2.
    let mut committed = 0;
    for _ in 0..200 {
        if path.exists() {
            let other = Store::open(&path).expect("another connection");
            committed = rows(&other, Shape::Entity, "entra_user").len();
            if committed > 0 {
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    child.kill().expect("killed");
    let _ = child.wait();
    hold.store(false, Ordering::SeqCst);
    assert_eq!(committed, 2, "page 1 was committed before the kill");

    let spec = spec("entra-id");
    let config = entra_config(&spec, &server.base, "  resources: [users]\n");
    let mut store = Store::open(&path).expect("store");
    let second = run(&spec, &config, &mut store, options()).await.expect("run");
    assert_eq!(second.status, RunStatus::Ok, "{second:#?}");
    let user_pages: Vec<Option<String>> =
        server.requests_to("/v1.0/users").iter().map(|r| r.param("$skiptoken")).collect();
    let p2 = Some("p2".to_string());
    assert_eq!(
        user_pages,
        [None, p2.clone(), p2],
        "the killed process asked for pages 1 and 2, the next run for page 2"
    );
    let (mut clean, _clean_dir) = temp_store("killed-clean");
    run(&spec, &config, &mut clean, options()).await.expect("clean run");
    assert_eq!(rows(&store, Shape::Entity, "entra_user"), rows(&clean, Shape::Entity, "entra_user"));
}
