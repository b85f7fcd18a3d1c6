//! KRIs and metrics over the store, ScubaGear-style: a healthy base tenant written straight into a store
//! with the store API (users, MFA registrations, role members, Conditional Access policies, sign-ins,
//! audit events, and a run recording how each resource went), and each case a small patch of it. Every
//! decision rule C-* of the Entra ID spec has a case here. Then property tests compare every aggregate
//! with a naive reference on pseudo-random rows, and end-to-end tests cover `engine run` and `engine kri`.

use crate::TempDir;
use crate::server::{Reply, Server};
use engine::config::{self, RunConfig};
use engine::kri::{self, KriOptions, KriResult, KriValue, LookupStrategy};
use engine::model::Spec;
use engine::run::{RunOptions, run};
use engine::source::Source;
use engine::store::{Band, KriStatus, PageWrite, ResourceReport, ResourceStatus, Row, RunStatus, Store};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// 2025-06-30T12:00:00Z
const NOW_MS: i64 = 1_751_284_800_000;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
const INSTANCE: &str = "contoso";

/// Every resource of the spec, in run order.
const RESOURCES: &[&str] = &[
    "organization",
    "users",
    "signins",
    "risky_users",
    "directory_roles",
    "directory_role_members",
    "directory_audits",
    "conditional_access_policies",
    "mfa_registration",
];

fn entra() -> &'static Spec {
    static SPEC: OnceLock<Spec> = OnceLock::new();
    SPEC.get_or_init(|| {
        let path = crate::repo_path("specs/entra-id.yaml");
        engine::validate::validate(&Source::read(&path).expect("spec readable")).spec.expect("spec valid")
    })
}

fn attributes(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("attributes must be an object, got {other}"),
    }
}

// ---------------------------------------------------------------------------------------------------------
// The base tenant and its patches

/// Rows by resource, and what the run said about each resource.
struct Tenant {
    rows: Vec<(&'static str, Row)>,
    statuses: BTreeMap<&'static str, ResourceStatus>,
    run_status: RunStatus,
    /// Resources the run recorded; all of them unless a case says otherwise.
    recorded: Vec<&'static str>,
}

/// An enabled member's attributes, as the users resource maps them.
fn member(id: &str) -> Value {
    json!({
        "displayName": format!("User {id}"),
        "userPrincipalName": format!("{id}@contoso.com"),
        "mail": format!("{id}@contoso.com"),
        "accountEnabled": true,
        "userType": "Member",
        "createdAt": 1_577_934_245_000i64,
        "lastSignInAt": NOW_MS - DAY,
    })
}

fn with(mut base: Value, patch: Value) -> Value {
    for (key, value) in attributes(patch) {
        base[key] = value;
    }
    base
}

fn user_row(id: &str, attrs: Value) -> Row {
    Row::Entity { entity_type: "entra_user".into(), id: id.into(), attributes: attributes(attrs) }
}

fn registration(id: &str, registered: Value) -> Row {
    Row::Entity {
        entity_type: "entra_mfa_registration".into(),
        id: id.into(),
        attributes: attributes(json!({
            "userPrincipalName": format!("{id}@contoso.com"),
            "userType": "member",
            "isMfaRegistered": registered,
            "isMfaCapable": registered,
            "isAdmin": false,
            "methodsRegistered": ["microsoftAuthenticatorPush"],
        })),
    }
}

fn role(id: &str, name: &str) -> Row {
    Row::Entity {
        entity_type: "entra_directory_role".into(),
        id: id.into(),
        attributes: attributes(json!({"displayName": name, "roleTemplateId": format!("template-{id}")})),
    }
}

fn role_member(role: &str, id: &str, member_type: &str) -> Row {
    Row::Edge {
        from_type: "entra_directory_role".into(),
        from_id: role.into(),
        kind: "has_member".into(),
        to_type: "entra_directory_object".into(),
        to_id: id.into(),
        attributes: attributes(json!({
            "memberType": format!("#microsoft.graph.{member_type}"),
            "displayName": format!("Object {id}"),
            "roleDisplayName": format!("Role {role}"),
        })),
    }
}

/// The covering policy of the base tenant: enabled, all users, no exclusions, MFA required.
fn covering_policy() -> Value {
    json!({
        "displayName": "Require MFA for everyone",
        "state": "enabled",
        "conditions": {"users": {"includeUsers": ["All"], "excludeUsers": []}},
        "grantControls": {"operator": "OR", "builtInControls": ["mfa"], "authenticationStrength": null},
        "includeUsers": ["All"],
        "excludeUsers": [],
        "builtInControls": ["mfa"],
        "authenticationStrength": null,
    })
}

fn policy(id: &str, attrs: Value) -> Row {
    Row::Entity { entity_type: "entra_ca_policy".into(), id: id.into(), attributes: attributes(attrs) }
}

/// A sign-in event; `status` is what the mapping derives from errorCode ("success", "failure" or null).
fn signin(key: &str, start: i64, status: Value) -> Row {
    let error_code = match status.as_str() {
        Some("success") => json!(0),
        Some("failure") => json!(50126),
        _ => Value::Null,
    };
    Row::Event {
        name: "entra_signin_event".into(),
        key: key.into(),
        start,
        end: None,
        attributes: attributes(json!({"errorCode": error_code, "status": status, "userId": "u01", "appId": "app-1"})),
    }
}

fn audit(key: &str, start: i64, category: &str) -> Row {
    Row::Event {
        name: "entra_directory_audit".into(),
        key: key.into(),
        start,
        end: None,
        attributes: attributes(
            json!({"category": category, "activityDisplayName": "Add member to role", "result": "success"}),
        ),
    }
}

impl Tenant {
    /// Ten enabled members, all registered for MFA and signed in yesterday; an enabled guest; a disabled
    /// member; a Global Administrator held by a member, a service principal and a group; one covering CA
    /// policy; sign-ins and audit events with nothing to report. Every KRI is ok and green.
    fn healthy() -> Tenant {
        let mut t = Tenant {
            rows: Vec::new(),
            statuses: RESOURCES.iter().map(|r| (*r, ResourceStatus::Ok)).collect(),
            run_status: RunStatus::Ok,
            recorded: RESOURCES.to_vec(),
        };
        t.push(
            "organization",
            Row::Entity {
                entity_type: "entra_organization".into(),
                id: "t1".into(),
                attributes: attributes(json!({"displayName": "Contoso"})),
            },
        );
        for i in 1..=10 {
            let id = format!("u{i:02}");
            t.push("users", user_row(&id, member(&id)));
            t.push("mfa_registration", registration(&id, json!(true)));
        }
        t.push("users", user_row("g01", with(member("g01"), json!({"userType": "Guest"}))));
        t.push("users", user_row("d01", with(member("d01"), json!({"accountEnabled": false, "lastSignInAt": null}))));
        t.push("directory_roles", role("r-ga", "Global Administrator"));
        t.push("directory_roles", role("r-ua", "User Administrator"));
        t.push("directory_roles", role("r-sec", "Security Administrator"));
        t.push("directory_role_members", role_member("r-ga", "u01", "user"));
        t.push("directory_role_members", role_member("r-ga", "sp-1", "servicePrincipal"));
        t.push("directory_role_members", role_member("r-ga", "grp-1", "group"));
        t.push("conditional_access_policies", policy("p-mfa", covering_policy()));
        t.push("signins", signin("s-ok", NOW_MS - HOUR, json!("success")));
        t.push("signins", signin("s-old-failure", NOW_MS - 3 * DAY, json!("failure")));
        t.push("signins", signin("s-no-status", NOW_MS - 2 * HOUR, Value::Null));
        t.push("directory_audits", audit("a-user", NOW_MS - HOUR, "UserManagement"));
        t.push("directory_audits", audit("a-role-old", NOW_MS - 2 * DAY, "RoleManagement"));
        t
    }

    fn push(&mut self, resource: &'static str, row: Row) {
        self.rows.push((resource, row));
    }

    /// Sets attributes of every entity (of any type) with this id.
    fn patch_entity(&mut self, entity_id: &str, patch: Value) {
        let mut found = false;
        for (_, row) in &mut self.rows {
            if let Row::Entity { id, attributes: attrs, .. } = row
                && id == entity_id
            {
                for (key, value) in attributes(patch.clone()) {
                    attrs.insert(key, value);
                }
                found = true;
            }
        }
        assert!(found, "no entity `{entity_id}` in the tenant");
    }

    fn remove_attribute(&mut self, entity_id: &str, name: &str) {
        for (_, row) in &mut self.rows {
            if let Row::Entity { id, attributes, .. } = row
                && id == entity_id
            {
                attributes.remove(name);
            }
        }
    }

    fn remove_rows(&mut self, resource: &str) {
        self.rows.retain(|(r, _)| *r != resource);
    }

    /// The resource ended as `status` in the run and, as on a first sync, stored nothing.
    fn unavailable(&mut self, resource: &'static str, status: ResourceStatus) {
        self.remove_rows(resource);
        self.statuses.insert(resource, status);
        self.run_status = RunStatus::Degraded;
    }

    /// Writes the tenant into a fresh store, with one run recording every resource's status. The store
    /// lives as long as the directory.
    fn store(&self, name: &str) -> (Store, TempDir) {
        let dir = TempDir::new(&format!("kri-test-{name}"));
        let mut store = Store::open(dir.store()).expect("store");
        let run_id = store.begin_run("entra-id", INSTANCE, NOW_MS - 60_000).expect("run");
        for resource in &self.recorded {
            let rows: Vec<Row> = self.rows.iter().filter(|(r, _)| r == resource).map(|(_, row)| row.clone()).collect();
            let page = PageWrite {
                instance: INSTANCE.into(),
                run_id: run_id.clone(),
                resource: (*resource).into(),
                now: NOW_MS - 60_000,
                rows,
                state: None,
            };
            store.write_page(&page).expect("page");
            let report = ResourceReport {
                resource: (*resource).into(),
                pages: 1,
                records: 0,
                written: 0,
                skipped: 0,
                status: self.statuses[resource],
                warnings: Vec::new(),
            };
            store.record_resource(&run_id, &report).expect("record");
        }
        store.finish_run(&run_id, self.run_status, NOW_MS - 1_000, &json!({})).expect("finish");
        (store, dir)
    }

    /// Every KRI and metric of the spec over this tenant, evaluated (and stored) at `NOW_MS`.
    fn evaluate(&self, name: &str) -> Results {
        let (mut store, _dir) = self.store(name);
        let results = kri::evaluate(entra(), &mut store, &KriOptions::new(INSTANCE, NOW_MS)).expect("evaluate");
        Results(results.into_iter().map(|r| (r.slug.clone(), r)).collect())
    }
}

struct Results(BTreeMap<String, KriResult>);

impl Results {
    fn get(&self, slug: &str) -> &KriResult {
        self.0.get(slug).unwrap_or_else(|| panic!("no result for {slug}"))
    }

    /// Asserts value and status, with the whole result in the message when they differ.
    fn expect(&self, slug: &str, value: f64, status: KriStatus) -> &KriResult {
        let r = self.get(slug);
        assert_eq!((r.value.map(KriValue::as_f64), r.status), (Some(value), status), "{slug}: {r:#?}");
        r
    }

    fn ok(&self, slug: &str, value: f64) -> &KriResult {
        self.expect(slug, value, KriStatus::Ok)
    }

    fn degraded(&self, slug: &str, value: f64, rule: &str) -> &KriResult {
        let r = self.expect(slug, value, KriStatus::Degraded);
        let reason = r.reason.as_deref().unwrap_or_default();
        assert!(reason.contains(rule), "{slug}: the reason should cite {rule}: {reason}");
        r
    }
}

const MFA: &str = "entra_mfa_enrollment_pct";
const PRIV: &str = "entra_privileged_no_mfa_count";
const STALE: &str = "entra_stale_accounts_90d";
const CA: &str = "entra_ca_coverage_gaps";
const GUESTS: &str = "entra_guest_account_count";
const FAILED: &str = "entra_failed_signins_24h";
const ROLE_CHANGES: &str = "entra_priv_role_changes_24h";
const ENABLED: &str = "entra_enabled_users";
const FAILED_METRIC: &str = "entra_failed_signins";
const RISKY: &str = "entra_risky_users";

// ---------------------------------------------------------------------------------------------------------
// The base tenant

#[test]
fn the_healthy_tenant_is_green_everywhere() {
    let r = Tenant::healthy().evaluate("healthy");
    let mfa = r.ok(MFA, 100.0);
    assert_eq!(mfa.value, Some(KriValue::Float(100.0)), "a percentage is a float");
    assert_eq!((mfa.band, mfa.unit), (Some(Band::Green), Some("percent")));
    assert_eq!(mfa.evidence_count, 0, "nobody is not enrolled");
    assert_eq!(r.ok(PRIV, 0.0).value, Some(KriValue::Int(0)), "a count is an integer");
    r.ok(STALE, 0.0);
    let ca = r.ok(CA, 0.0);
    assert_eq!(
        (ca.evidence.as_slice(), ca.evidence_count),
        (&["p-mfa".to_string()][..], 1),
        "evidence: the covering policy"
    );
    let guests = r.ok(GUESTS, 1.0);
    assert_eq!(guests.evidence, ["g01"]);
    r.ok(FAILED, 0.0);
    r.ok(ROLE_CHANGES, 0.0);
    r.ok(ENABLED, 10.0);
    r.ok(FAILED_METRIC, 0.0);
    r.ok(RISKY, 0.0);
    for slug in [MFA, PRIV, STALE, CA, GUESTS, FAILED, ROLE_CHANGES] {
        assert_eq!(r.get(slug).band, Some(Band::Green), "{slug}");
        assert_eq!(r.get(slug).reason, None, "{slug}");
    }
    for slug in [ENABLED, FAILED_METRIC, RISKY] {
        assert_eq!(r.get(slug).band, None, "metrics have no bands: {slug}");
        assert_eq!(r.get(slug).kind, kri::IndicatorKind::Metric);
    }
}

// ---------------------------------------------------------------------------------------------------------
// C-ENABLED-MEMBER and C-GUEST

#[test]
fn disabled_users_are_not_members() {
    let mut t = Tenant::healthy();
    for i in 11..=15 {
        let id = format!("u{i:02}");
        t.push("users", user_row(&id, with(member(&id), json!({"accountEnabled": false, "lastSignInAt": null}))));
    }
    // Null is not true either: accountEnabled is nullable in the API.
    t.push("users", user_row("u16", with(member("u16"), json!({"accountEnabled": null}))));
    let r = t.evaluate("disabled");
    r.ok(ENABLED, 10.0);
    r.ok(MFA, 100.0);
    r.ok(STALE, 0.0);
}

#[test]
fn a_null_or_missing_user_type_counts_as_a_member() {
    let mut t = Tenant::healthy();
    t.push("users", user_row("u11", with(member("u11"), json!({"userType": null}))));
    t.push("users", user_row("u12", member("u12")));
    t.remove_attribute("u12", "userType");
    // Exact and case-sensitive: "guest" is not "Guest".
    t.push("users", user_row("u13", with(member("u13"), json!({"userType": "guest"}))));
    let r = t.evaluate("user-type");
    r.ok(ENABLED, 13.0);
    r.ok(GUESTS, 1.0);
    // The three are members without a registration row: 10 of 13 enrolled.
    r.ok(MFA, 76.9);
    assert_eq!(r.get(MFA).evidence, ["u11", "u12", "u13"]);
}

#[test]
fn disabled_guests_count_as_guests() {
    let mut t = Tenant::healthy();
    t.push("users", user_row("g02", with(member("g02"), json!({"userType": "Guest", "accountEnabled": false}))));
    t.push("users", user_row("g03", with(member("g03"), json!({"userType": "GUEST"}))));
    let r = t.evaluate("guests");
    assert_eq!(r.ok(GUESTS, 2.0).evidence, ["g01", "g02"]);
    r.ok(ENABLED, 11.0);
}

// ---------------------------------------------------------------------------------------------------------
// C-MFA-JOIN, C-PCT-ROUND, C-PCT-ZERO

#[test]
fn registered_means_is_mfa_registered_and_no_row_means_not_registered() {
    let mut t = Tenant::healthy();
    // Capable is not registered.
    t.patch_entity("u02", json!({"isMfaRegistered": false, "isMfaCapable": true}));
    t.patch_entity("u03", json!({"isMfaRegistered": null}));
    // No row at all.
    t.rows.retain(|(_, row)| !matches!(row, Row::Entity { entity_type, id, .. } if entity_type == "entra_mfa_registration" && id == "u04"));
    let r = t.evaluate("mfa-join");
    let mfa = r.ok(MFA, 70.0);
    assert_eq!(
        (mfa.evidence.as_slice(), mfa.evidence_count),
        (&["u02".to_string(), "u03".into(), "u04".into()][..], 3)
    );
    assert_eq!(mfa.band, Some(Band::Red), "70 is below amber's 80");
}

#[test]
fn one_in_sixteen_rounds_half_away_from_zero_to_6_3() {
    let mut t = Tenant::healthy();
    t.rows.retain(|(_, row)| !matches!(row, Row::Entity { entity_type, id, .. } if entity_type == "entra_mfa_registration" && id != "u01"));
    for i in 11..=16 {
        let id = format!("u{i:02}");
        t.push("users", user_row(&id, member(&id)));
    }
    let r = t.evaluate("round");
    let mfa = r.ok(MFA, 6.3);
    assert_eq!(mfa.value, Some(KriValue::Float(6.3)));
    assert_eq!(mfa.evidence_count, 15);
    r.ok(ENABLED, 16.0);
}

#[test]
fn zero_enabled_members_give_0_0() {
    let mut t = Tenant::healthy();
    for i in 1..=10 {
        t.patch_entity(&format!("u{i:02}"), json!({"accountEnabled": false}));
    }
    let r = t.evaluate("zero");
    let mfa = r.ok(MFA, 0.0);
    assert_eq!(mfa.value, Some(KriValue::Float(0.0)));
    assert_eq!(mfa.band, Some(Band::Red));
    r.ok(ENABLED, 0.0);
    r.ok(CA, 0.0);
}

// ---------------------------------------------------------------------------------------------------------
// C-PRIV-USERS

#[test]
fn a_guest_holding_a_role_is_privileged() {
    let mut t = Tenant::healthy();
    t.push("directory_role_members", role_member("r-ua", "g01", "user"));
    let r = t.evaluate("guest-role");
    let privileged = r.ok(PRIV, 1.0);
    assert_eq!(privileged.evidence, ["g01"]);
    assert_eq!(privileged.band, Some(Band::Red));
}

#[test]
fn a_user_in_three_roles_is_counted_once() {
    let mut t = Tenant::healthy();
    t.push("users", user_row("u11", member("u11")));
    for r in ["r-ga", "r-ua", "r-sec"] {
        t.push("directory_role_members", role_member(r, "u11", "user"));
    }
    let r = t.evaluate("three-roles");
    assert_eq!(r.ok(PRIV, 1.0).evidence, ["u11"]);
}

#[test]
fn disabled_users_in_roles_count_and_other_principals_do_not() {
    let mut t = Tenant::healthy();
    t.push("directory_role_members", role_member("r-ua", "d01", "user"));
    t.push("directory_role_members", role_member("r-ua", "sp-2", "servicePrincipal"));
    t.push("directory_role_members", role_member("r-sec", "grp-2", "group"));
    let r = t.evaluate("principals");
    assert_eq!(r.ok(PRIV, 1.0).evidence, ["d01"]);
}

// ---------------------------------------------------------------------------------------------------------
// C-STALE

#[test]
fn exactly_90_days_is_not_stale_and_one_millisecond_more_is() {
    let mut t = Tenant::healthy();
    t.patch_entity("u01", json!({"lastSignInAt": NOW_MS - 90 * DAY}));
    t.patch_entity("u02", json!({"lastSignInAt": NOW_MS - 90 * DAY - 1}));
    let r = t.evaluate("stale-edge");
    let stale = r.ok(STALE, 1.0);
    assert_eq!(stale.evidence, ["u02"]);
    assert_eq!(stale.band, Some(Band::Amber), "1 is within amber's 10");
}

#[test]
fn a_null_or_missing_last_sign_in_is_stale() {
    let mut t = Tenant::healthy();
    t.patch_entity("u03", json!({"lastSignInAt": null}));
    t.remove_attribute("u04", "lastSignInAt");
    let r = t.evaluate("stale-null");
    assert_eq!(r.ok(STALE, 2.0).evidence, ["u03", "u04"]);
}

#[test]
fn only_enabled_members_can_be_stale() {
    let mut t = Tenant::healthy();
    // The base tenant's disabled member and guest never signed in.
    t.patch_entity("g01", json!({"lastSignInAt": null}));
    let r = t.evaluate("stale-members");
    r.ok(STALE, 0.0);
}

// ---------------------------------------------------------------------------------------------------------
// C-WIN-24H and C-FAILURE

#[test]
fn a_failed_sign_in_exactly_24_hours_old_is_counted_and_one_millisecond_older_is_not() {
    let mut t = Tenant::healthy();
    t.push("signins", signin("s-edge", NOW_MS - 24 * HOUR, json!("failure")));
    t.push("signins", signin("s-outside", NOW_MS - 24 * HOUR - 1, json!("failure")));
    t.push("signins", signin("s-now", NOW_MS, json!("failure")));
    t.push("signins", signin("s-future", NOW_MS + 1, json!("failure")));
    // Null status (errorCode null) is neither success nor failure.
    t.push("signins", signin("s-null", NOW_MS - HOUR, Value::Null));
    let r = t.evaluate("window-signins");
    assert_eq!(r.ok(FAILED, 2.0).evidence, ["s-edge", "s-now"]);
    r.ok(FAILED_METRIC, 2.0);
}

#[test]
fn a_role_change_exactly_24_hours_old_is_counted_and_one_millisecond_older_is_not() {
    let mut t = Tenant::healthy();
    t.push("directory_audits", audit("a-edge", NOW_MS - DAY, "RoleManagement"));
    t.push("directory_audits", audit("a-outside", NOW_MS - DAY - 1, "RoleManagement"));
    t.push("directory_audits", audit("a-recent", NOW_MS - 1, "RoleManagement"));
    t.push("directory_audits", audit("a-case", NOW_MS - 1, "roleManagement"));
    let r = t.evaluate("window-audits");
    assert_eq!(r.ok(ROLE_CHANGES, 2.0).evidence, ["a-edge", "a-recent"]);
}

// ---------------------------------------------------------------------------------------------------------
// C-CA-RULE

fn ca_gaps_with(name: &str, attrs: Value) -> Results {
    let mut t = Tenant::healthy();
    t.remove_rows("conditional_access_policies");
    t.push("conditional_access_policies", policy("p-1", attrs));
    t.evaluate(name)
}

#[test]
fn a_report_only_policy_covers_nobody() {
    let r =
        ca_gaps_with("ca-report-only", with(covering_policy(), json!({"state": "enabledForReportingButNotEnforced"})));
    let gaps = r.ok(CA, 10.0);
    assert_eq!((gaps.evidence_count, gaps.band), (0, Some(Band::Red)));
    ca_gaps_with("ca-disabled", with(covering_policy(), json!({"state": "disabled"}))).ok(CA, 10.0);
}

#[test]
fn a_policy_with_excluded_users_covers_nobody() {
    ca_gaps_with("ca-exclude", with(covering_policy(), json!({"excludeUsers": ["u01"]}))).ok(CA, 10.0);
    // Missing or null exclusions are no exclusions.
    ca_gaps_with("ca-exclude-null", with(covering_policy(), json!({"excludeUsers": null}))).ok(CA, 0.0);
    let mut t = Tenant::healthy();
    t.remove_attribute("p-mfa", "excludeUsers");
    t.evaluate("ca-exclude-missing").ok(CA, 0.0);
}

#[test]
fn mfa_through_an_authentication_strength_only_does_not_count() {
    let attrs = with(
        covering_policy(),
        json!({
            "grantControls": {"operator": "OR", "builtInControls": [], "authenticationStrength": {"id": "00000000-0000-0000-0000-000000000002"}},
            "builtInControls": [],
            "authenticationStrength": {"id": "00000000-0000-0000-0000-000000000002"},
        }),
    );
    ca_gaps_with("ca-strength", attrs).ok(CA, 10.0);
}

#[test]
fn a_policy_without_grant_controls_covers_nobody() {
    // As mapped: a null grantControls leaves builtInControls null too.
    let mapped = with(covering_policy(), json!({"grantControls": null, "builtInControls": null}));
    ca_gaps_with("ca-grant-null", mapped).ok(CA, 10.0);
    // The grantControls condition on its own: even a leftover builtInControls does not make it cover.
    let isolated = with(covering_policy(), json!({"grantControls": null}));
    ca_gaps_with("ca-grant-null-only", isolated).ok(CA, 10.0);
}

#[test]
fn a_policy_for_some_users_only_covers_nobody() {
    ca_gaps_with("ca-include", with(covering_policy(), json!({"includeUsers": ["u01", "u02"]}))).ok(CA, 10.0);
}

// ---------------------------------------------------------------------------------------------------------
// Fallbacks: C-SIGNIN-ERR, C-CA-ERR, C-URD-ERR, C-AUDIT-ERR, C-ROLE-ERR, C-SIA-ERR, C-RISKY-ERR

#[test]
fn without_sign_in_logs_failed_sign_ins_are_0_degraded() {
    let mut t = Tenant::healthy();
    t.unavailable("signins", ResourceStatus::NotApplicable);
    let r = t.evaluate("fallback-signins");
    let failed = r.degraded(FAILED, 0.0, "C-SIGNIN-ERR");
    assert_eq!(failed.band, Some(Band::Green), "a fallback value is banded like any other");
    let metric = r.get(FAILED_METRIC);
    assert_eq!((metric.status, metric.value), (KriStatus::NotApplicable, None), "{metric:#?}");
    r.ok(MFA, 100.0);
}

#[test]
fn without_conditional_access_policies_every_enabled_member_is_a_gap() {
    let mut t = Tenant::healthy();
    t.unavailable("conditional_access_policies", ResourceStatus::NotApplicable);
    t.evaluate("fallback-ca-na").degraded(CA, 10.0, "C-CA-ERR");
    let mut t = Tenant::healthy();
    t.unavailable("conditional_access_policies", ResourceStatus::Failed);
    t.evaluate("fallback-ca-failed").degraded(CA, 10.0, "C-CA-ERR");
}

#[test]
fn without_registration_details_nobody_is_registered() {
    let mut t = Tenant::healthy();
    t.push("directory_role_members", role_member("r-ua", "u02", "user"));
    t.unavailable("mfa_registration", ResourceStatus::NotApplicable);
    let r = t.evaluate("fallback-urd");
    r.degraded(MFA, 0.0, "C-URD-ERR");
    assert_eq!(r.get(MFA).band, Some(Band::Red));
    r.degraded(PRIV, 2.0, "C-URD-ERR");
    // Rows an earlier run stored do not count either.
    let mut t = Tenant::healthy();
    t.statuses.insert("mfa_registration", ResourceStatus::NotApplicable);
    let r = t.evaluate("fallback-urd-stale-rows");
    r.degraded(MFA, 0.0, "C-URD-ERR");
    r.degraded(PRIV, 1.0, "C-URD-ERR");
}

#[test]
fn without_audit_logs_role_changes_are_0_degraded() {
    let mut t = Tenant::healthy();
    t.statuses.insert("directory_audits", ResourceStatus::NotApplicable);
    // Even with changes stored by an earlier run.
    t.push("directory_audits", audit("a-recent", NOW_MS - HOUR, "RoleManagement"));
    t.evaluate("fallback-audits").degraded(ROLE_CHANGES, 0.0, "C-AUDIT-ERR");
}

#[test]
fn without_directory_roles_or_their_members_the_privileged_set_is_empty() {
    let mut t = Tenant::healthy();
    t.push("directory_role_members", role_member("r-ua", "g01", "user"));
    t.unavailable("directory_roles", ResourceStatus::Failed);
    t.statuses.insert("directory_role_members", ResourceStatus::Skipped);
    t.evaluate("fallback-roles").degraded(PRIV, 0.0, "C-ROLE-ERR");
    let mut t = Tenant::healthy();
    t.unavailable("directory_role_members", ResourceStatus::NotApplicable);
    t.evaluate("fallback-role-members").degraded(PRIV, 0.0, "C-ROLE-ERR");
}

#[test]
fn users_read_without_sign_in_activity_make_every_enabled_member_stale() {
    let mut t = Tenant::healthy();
    for i in 1..=10 {
        t.patch_entity(&format!("u{i:02}"), json!({"lastSignInAt": null}));
    }
    t.statuses.insert("users", ResourceStatus::Degraded);
    t.run_status = RunStatus::Degraded;
    let r = t.evaluate("fallback-sia");
    let stale = r.degraded(STALE, 10.0, "C-SIA-ERR");
    assert_eq!(stale.band, Some(Band::Amber));
    // A degraded users resource does not degrade what it still answers exactly.
    r.ok(GUESTS, 1.0);
    r.ok(MFA, 100.0);
    // The value is the enabled members, whatever sign-in dates are stored.
    let mut t = Tenant::healthy();
    t.statuses.insert("users", ResourceStatus::Degraded);
    t.evaluate("fallback-sia-dates").degraded(STALE, 10.0, "C-SIA-ERR");
}

#[test]
fn without_risky_users_the_metric_is_not_applicable() {
    let mut t = Tenant::healthy();
    t.unavailable("risky_users", ResourceStatus::NotApplicable);
    let r = t.evaluate("fallback-risky");
    let risky = r.get(RISKY);
    assert_eq!((risky.status, risky.value, risky.band), (KriStatus::NotApplicable, None, None));
    assert!(risky.reason.as_deref().unwrap_or_default().contains("P2"), "{risky:#?}");
}

#[test]
fn a_resource_without_a_fallback_that_was_not_read_degrades_with_its_name() {
    let mut t = Tenant::healthy();
    t.statuses.insert("users", ResourceStatus::Failed);
    t.run_status = RunStatus::Failed;
    let r = t.evaluate("no-fallback");
    let guests = r.get(GUESTS);
    assert_eq!((guests.status, guests.value), (KriStatus::Degraded, Some(KriValue::Int(1))), "{guests:#?}");
    let reason = guests.reason.as_deref().unwrap_or_default();
    assert!(reason.contains("`users` (failed)") && reason.contains("stored before"), "{reason}");
}

#[test]
fn the_first_matching_fallback_wins() {
    let mut t = Tenant::healthy();
    t.unavailable("directory_role_members", ResourceStatus::NotApplicable);
    t.unavailable("mfa_registration", ResourceStatus::NotApplicable);
    let r = t.evaluate("first-fallback");
    // Role members come before registration details in the spec's list.
    let privileged = r.degraded(PRIV, 0.0, "C-ROLE-ERR");
    assert!(!privileged.reason.as_deref().unwrap_or_default().contains("C-URD-ERR"));
}

#[test]
fn a_sync_that_failed_entirely_still_says_why_each_kri_is_degraded() {
    let mut t = Tenant::healthy();
    t.rows.clear();
    t.recorded = vec!["organization"];
    t.statuses.insert("organization", ResourceStatus::Failed);
    t.run_status = RunStatus::Failed;
    let r = t.evaluate("failed-entirely");
    r.degraded(MFA, 0.0, "C-URD-ERR");
    r.degraded(FAILED, 0.0, "C-SIGNIN-ERR");
    r.degraded(ROLE_CHANGES, 0.0, "C-AUDIT-ERR");
    r.degraded(CA, 0.0, "C-CA-ERR");
    r.degraded(PRIV, 0.0, "C-ROLE-ERR");
    r.degraded(GUESTS, 0.0, "`users` (failed)");
    r.degraded(STALE, 0.0, "`users` (failed)");
    for result in r.0.values() {
        assert_ne!(result.status, KriStatus::Ok, "{result:#?}");
    }
}

// ---------------------------------------------------------------------------------------------------------
// Errors, evidence, history, configuration

#[test]
fn an_evaluation_error_is_reported_not_raised() {
    let mut t = Tenant::healthy();
    // A timestamp left as text: `<` between text and a number is an error.
    t.patch_entity("u05", json!({"lastSignInAt": "2025-06-29T10:00:00Z"}));
    let r = t.evaluate("error");
    let stale = r.get(STALE);
    assert_eq!((stale.status, stale.value, stale.band), (KriStatus::Error, None, None), "{stale:#?}");
    let reason = stale.reason.as_deref().unwrap_or_default();
    assert!(reason.contains("aggregate `stale`") && reason.contains("entra_user `u05`"), "{reason}");
    r.ok(GUESTS, 1.0);
    r.ok(MFA, 100.0);
}

#[test]
fn evidence_lists_the_smallest_ids_up_to_the_limit_and_counts_them_all() {
    let mut t = Tenant::healthy();
    for i in (0..60).rev() {
        let id = format!("guest-{i:03}");
        t.push("users", user_row(&id, with(member(&id), json!({"userType": "Guest"}))));
    }
    let r = t.evaluate("evidence");
    let guests = r.ok(GUESTS, 61.0);
    assert_eq!(guests.evidence.len(), 50, "the spec's default evidence limit");
    assert_eq!(guests.evidence_count, 61);
    // Text order: `g01` sorts before `guest-000`.
    let expected: Vec<String> =
        std::iter::once("g01".to_string()).chain((0..49).map(|i| format!("guest-{i:03}"))).collect();
    assert_eq!(guests.evidence, expected);
    assert_eq!(guests.band, Some(Band::Amber));
}

#[test]
fn every_evaluation_is_kept_as_history() {
    let t = Tenant::healthy();
    let (mut store, _dir) = t.store("history");
    let run_id = store.last_run(INSTANCE).expect("run").expect("a run").run_id;
    kri::evaluate(entra(), &mut store, &KriOptions::new(INSTANCE, NOW_MS)).expect("first");
    kri::evaluate(entra(), &mut store, &KriOptions::new(INSTANCE, NOW_MS + HOUR)).expect("second");
    let history = store.kri_history(INSTANCE, GUESTS).expect("history");
    assert_eq!(history.iter().map(|k| k.ts).collect::<Vec<_>>(), [NOW_MS, NOW_MS + HOUR]);
    assert_eq!(history[0].value, Some(1.0));
    assert_eq!(history[0].run_id.as_deref(), Some(run_id.as_str()), "the run whose data it read");
    assert_eq!(history[0].evidence, ["g01"]);
    let latest = store.latest_kris(INSTANCE).expect("latest");
    assert_eq!(latest.len(), 10, "seven KRIs and three metrics, in the same table");
    assert!(latest.iter().all(|k| k.ts == NOW_MS + HOUR));
    let metric = latest.iter().find(|k| k.slug == ENABLED).expect("metric stored");
    assert_eq!((metric.value, metric.band), (Some(10.0), None));
}

fn entra_config(text: &str) -> RunConfig {
    let text = format!(
        "instance: {INSTANCE}\nconfig:\n  tenant_id: contoso.onmicrosoft.com\n  client_id: 11111111-2222-3333-4444-555555555555\n  \
         client_secret: {{ env: TEST_SECRET }}\n{text}"
    );
    config::load(&Source::new("config.yaml", text), entra(), &|_| Some("s3cret".into()))
        .unwrap_or_else(|d| panic!("config: {d:?}"))
}

#[test]
fn the_config_selects_kris_and_overrides_bands() {
    let config = entra_config(&format!(
        "kris: [{GUESTS}, {MFA}]\nbands:\n  {GUESTS}: {{ green: \"<= 0\", amber: \"<= 1\" }}\n  {MFA}: {{ green: \"== 100\" }}\n"
    ));
    let mut t = Tenant::healthy();
    t.push("users", user_row("g02", with(member("g02"), json!({"userType": "Guest"}))));
    let (mut store, _dir) = t.store("config");
    let options = KriOptions::new(INSTANCE, NOW_MS).with_config(&config);
    let results = kri::evaluate(entra(), &mut store, &options).expect("evaluate");
    let slugs: Vec<&str> = results.iter().map(|r| r.slug.as_str()).collect();
    assert_eq!(slugs, [MFA, GUESTS], "spec order, only the selected ones");
    assert_eq!((results[0].value, results[0].band), (Some(KriValue::Float(100.0)), Some(Band::Green)));
    assert_eq!((results[1].value, results[1].band), (Some(KriValue::Int(2)), Some(Band::Red)), "2 is past amber's 1");
    assert_eq!(store.latest_kris(INSTANCE).expect("latest").len(), 2);
}

#[test]
fn every_lookup_strategy_and_thread_count_gives_the_same_results() {
    let mut t = Tenant::healthy();
    t.push("directory_role_members", role_member("r-ua", "g01", "user"));
    t.unavailable("signins", ResourceStatus::NotApplicable);
    let (store, _dir) = t.store("strategies");
    let last = store.last_run(INSTANCE).expect("run").map(|r| kri::LastRun::from_record(&r));
    let runs = [
        (LookupStrategy::Auto, 1),
        (LookupStrategy::Auto, 3),
        (LookupStrategy::Index, 2),
        (LookupStrategy::PrimaryKey, 1),
        (LookupStrategy::PrimaryKey, 4),
    ];
    let results: Vec<Vec<KriResult>> = runs
        .into_iter()
        .map(|(lookups, threads)| {
            let options = KriOptions { lookups, threads, ..KriOptions::new(INSTANCE, NOW_MS) };
            kri::compute(entra(), &store, &options, last.as_ref()).expect("compute")
        })
        .collect();
    for (run, result) in runs.iter().zip(&results).skip(1) {
        assert_eq!(&results[0], result, "{run:?}");
    }
}

// ---------------------------------------------------------------------------------------------------------
// Property tests: every aggregate against a naive reference on pseudo-random rows

const PROPERTY_SPEC: &str = r#"
spec_version: 1
id: prop
title: Aggregates
http:
  base_url: "https://api.example.com"
resources:
  items:
    request: { path: /items }
    records: "$.items[*]"
    emit:
      - entity:
          type: t_item
          id: $.id
          attributes: { n: $.n, x: $.x, g: $.g, flag: $.flag, at: $.at }
  ticks:
    request: { path: /ticks }
    records: "$.items[*]"
    emit:
      - event:
          name: t_tick
          key: $.id
          start: $.start
          attributes: { n: $.n, g: $.g }
  links:
    request: { path: /links }
    records: "$.items[*]"
    emit:
      - edge:
          from: { type: t_item, id: $.from }
          kind: linked
          to: { type: t_item, id: $.to }
          attributes: { w: $.w }
kris:
  all_items: { title: t, let: { a: { count: entity.t_item } }, value: a, evidence: a, evidence_limit: 7 }
  flagged: { title: t, let: { a: { count: entity.t_item, where: "flag == true" } }, value: a, evidence: a, evidence_limit: 3 }
  groups: { title: t, let: { a: { count_distinct: entity.t_item, field: g } }, value: a, evidence: a, evidence_limit: 4 }
  sum_n: { title: t, let: { a: { sum: entity.t_item, field: n, where: "n != 13" } }, value: a, evidence: a }
  min_n: { title: t, let: { a: { min: entity.t_item, field: n } }, value: a }
  max_x: { title: t, let: { a: { max: entity.t_item, field: x } }, value: a }
  sum_x: { title: t, let: { a: { sum: entity.t_item, field: x, where: "flag != true" } }, value: a }
  latest_item: { title: t, let: { a: { latest: entity.t_item, field: g } }, value: "if(is_empty(a), -1, len(a))" }
  recent_at: { title: t, let: { a: { count: entity.t_item, window: { field: at, last: 2h } } }, value: a }
  ticks_hour: { title: t, let: { a: { count: event.t_tick, window: { last: 1h } } }, value: a, evidence: a, evidence_limit: 5 }
  ticks_sum: { title: t, let: { a: { sum: event.t_tick, field: n, window: { last: 3h }, where: "g == \"a\"" } }, value: a }
  ticks_latest: { title: t, let: { a: { latest: event.t_tick, field: n } }, value: "coalesce(a, -1)" }
  ticks_groups: { title: t, let: { a: { count_distinct: event.t_tick, field: g, where: "coalesce(n, 0) > 5" } }, value: a }
  ticks_max: { title: t, let: { a: { max: event.t_tick, field: start, window: { last: 90m } } }, value: "coalesce(a, 0)" }
  looked_up: { title: t, let: { a: { count: entity.t_item, where: "lookup(\"t_item\", g, \"flag\") == true && len(id) > 0" } }, value: a }
  existing: { title: t, let: { a: { count: entity.t_item, where: "exists(\"t_item\", g) && len(id) > 0" } }, value: a }
  linked: { title: t, let: { a: { count: entity.t_item, where: "has_edge(\"t_item\", id, \"linked\", \"t_item\", g)" } }, value: a }
  self_n: { title: t, let: { a: { sum: entity.t_item, field: n, where: "lookup(\"t_item\", id, \"n\") == n && n != 13" } }, value: a, evidence: a }
  link_targets: { title: t, let: { a: { count_distinct: edge.linked, field: to_id, where: "w > 2" } }, value: a, evidence: a }
  ratio: { title: t, let: { f: { count: entity.t_item, where: "flag == true" }, a: { count: entity.t_item } }, value: "percent(f, a, 2)" }
"#;

/// xorshift64*: small, deterministic, and enough to shuffle test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

#[derive(Clone, Debug)]
struct Item {
    id: String,
    n: Option<i64>,
    x: Option<f64>,
    g: Option<String>,
    flag: Option<bool>,
    at: Option<i64>,
}

#[derive(Clone, Debug)]
struct Tick {
    key: String,
    start: i64,
    n: Option<i64>,
    g: Option<String>,
}

struct Link {
    from: String,
    to: String,
    w: i64,
}

fn generate(seed: u64, items: usize) -> (Vec<Item>, Vec<Tick>, Vec<Link>) {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let item_ids: Vec<String> = (0..items).map(|i| format!("i{:05}", (i * 7919) % 100_000)).collect();
    let groups = ["a", "b", "c", "d"];
    let mut out_items = Vec::new();
    for id in &item_ids {
        let g = match rng.below(10) {
            0 => None,
            1..=3 => Some(item_ids[rng.below(items as u64) as usize].clone()),
            4 => Some(format!("missing-{}", rng.below(5))),
            _ => Some(groups[rng.below(4) as usize].to_string()),
        };
        out_items.push(Item {
            id: id.clone(),
            n: rng.chance(85).then(|| rng.below(40) as i64 - 10),
            x: rng.chance(80).then(|| (rng.below(2_000) as f64) / 8.0 - 50.0),
            g,
            flag: match rng.below(3) {
                0 => None,
                1 => Some(true),
                _ => Some(false),
            },
            at: rng.chance(90).then(|| NOW_MS - rng.below(4 * HOUR as u64) as i64 + HOUR / 2),
        });
    }
    let ticks = (0..items * 2)
        .map(|i| Tick {
            key: format!("k{i:06}"),
            // Whole minutes, so windows land exactly on some events.
            start: NOW_MS - (rng.below(6 * 60) as i64 - 10) * 60_000,
            n: rng.chance(90).then(|| rng.below(12) as i64),
            g: rng.chance(90).then(|| groups[rng.below(4) as usize].to_string()),
        })
        .collect();
    let links = (0..items / 2)
        .map(|_| Link {
            from: item_ids[rng.below(items as u64) as usize].clone(),
            to: item_ids[rng.below(items as u64) as usize].clone(),
            w: rng.below(6) as i64,
        })
        .collect();
    (out_items, ticks, links)
}

fn opt<T: Into<Value>>(v: Option<T>) -> Value {
    v.map_or(Value::Null, Into::into)
}

fn property_store(name: &str, items: &[Item], ticks: &[Tick], links: &[Link]) -> (Store, TempDir) {
    let dir = TempDir::new(&format!("kri-test-{name}"));
    let mut store = Store::open(dir.store()).expect("store");
    let run_id = store.begin_run("prop", "p", NOW_MS).expect("run");
    let page = |resource: &str, rows: Vec<Row>| PageWrite {
        instance: "p".into(),
        run_id: run_id.clone(),
        resource: resource.into(),
        now: NOW_MS,
        rows,
        state: None,
    };
    let item_rows = items
        .iter()
        .map(|i| Row::Entity {
            entity_type: "t_item".into(),
            id: i.id.clone(),
            attributes: attributes(
                json!({"n": opt(i.n), "x": opt(i.x), "g": opt(i.g.clone()), "flag": opt(i.flag), "at": opt(i.at)}),
            ),
        })
        .collect();
    store.write_page(&page("items", item_rows)).expect("items");
    let tick_rows = ticks
        .iter()
        .map(|t| Row::Event {
            name: "t_tick".into(),
            key: t.key.clone(),
            start: t.start,
            end: None,
            attributes: attributes(json!({"n": opt(t.n), "g": opt(t.g.clone())})),
        })
        .collect();
    store.write_page(&page("ticks", tick_rows)).expect("ticks");
    let link_rows = links
        .iter()
        .map(|l| Row::Edge {
            from_type: "t_item".into(),
            from_id: l.from.clone(),
            kind: "linked".into(),
            to_type: "t_item".into(),
            to_id: l.to.clone(),
            attributes: attributes(json!({"w": l.w})),
        })
        .collect();
    store.write_page(&page("links", link_rows)).expect("links");
    store.finish_run(&run_id, RunStatus::Ok, NOW_MS, &json!({})).expect("finish");
    (store, dir)
}

fn within(t: Option<i64>, last: i64) -> bool {
    t.is_some_and(|t| NOW_MS - last <= t && t <= NOW_MS)
}

/// What each property KRI should be, computed the obvious way: (value, evidence, evidence count).
fn reference(
    items: &[Item],
    ticks: &[Tick],
    links: &[Link],
) -> BTreeMap<&'static str, (Option<KriValue>, Vec<String>, u64)> {
    use std::collections::BTreeSet;
    let mut out = BTreeMap::new();
    let int = |n: usize| Some(KriValue::Int(n as i64));
    let ids = |v: Vec<&str>, limit: usize| -> Vec<String> {
        let set: BTreeSet<&str> = v.into_iter().collect();
        set.into_iter().take(limit).map(str::to_string).collect()
    };
    let item_ids: Vec<&str> = items.iter().map(|i| i.id.as_str()).collect();
    out.insert("all_items", (int(items.len()), ids(item_ids.clone(), 7), items.len() as u64));
    let flagged: Vec<&str> = items.iter().filter(|i| i.flag == Some(true)).map(|i| i.id.as_str()).collect();
    out.insert("flagged", (int(flagged.len()), ids(flagged.clone(), 3), flagged.len() as u64));
    let groups: BTreeSet<&str> = items.iter().filter_map(|i| i.g.as_deref()).collect();
    out.insert(
        "groups",
        (int(groups.len()), groups.iter().take(4).map(|s| s.to_string()).collect(), groups.len() as u64),
    );
    let summed: Vec<&Item> = items.iter().filter(|i| i.n.is_some_and(|n| n != 13)).collect();
    let sum_n = (!summed.is_empty()).then(|| KriValue::Int(summed.iter().map(|i| i.n.unwrap_or(0)).sum()));
    let summed_ids: Vec<&str> = summed.iter().map(|i| i.id.as_str()).collect();
    out.insert("sum_n", (sum_n, ids(summed_ids, 50), summed.len() as u64));
    out.insert("min_n", (items.iter().filter_map(|i| i.n).min().map(KriValue::Int), vec![], 0));
    out.insert("max_x", (items.iter().filter_map(|i| i.x).reduce(f64::max).map(KriValue::Float), vec![], 0));
    let xs: Vec<f64> = items.iter().filter(|i| i.flag != Some(true)).filter_map(|i| i.x).collect();
    out.insert("sum_x", ((!xs.is_empty()).then(|| KriValue::Float(xs.iter().sum())), vec![], 0));
    // Entities of one sync share their time, so the latest is the greatest id.
    let latest = items.iter().max_by(|a, b| a.id.cmp(&b.id)).and_then(|i| i.g.as_ref()).map_or(-1, |g| g.len() as i64);
    out.insert("latest_item", (Some(KriValue::Int(latest)), vec![], 0));
    out.insert("recent_at", (int(items.iter().filter(|i| within(i.at, 2 * HOUR)).count()), vec![], 0));
    let hour: Vec<&str> = ticks.iter().filter(|t| within(Some(t.start), HOUR)).map(|t| t.key.as_str()).collect();
    out.insert("ticks_hour", (int(hour.len()), ids(hour.clone(), 5), hour.len() as u64));
    let tick_sum: Vec<i64> = ticks
        .iter()
        .filter(|t| within(Some(t.start), 3 * HOUR) && t.g.as_deref() == Some("a"))
        .filter_map(|t| t.n)
        .collect();
    out.insert("ticks_sum", ((!tick_sum.is_empty()).then(|| KriValue::Int(tick_sum.iter().sum())), vec![], 0));
    let latest_tick = ticks.iter().max_by(|a, b| (a.start, &a.key).cmp(&(b.start, &b.key))).map(|t| t.n.unwrap_or(-1));
    out.insert("ticks_latest", (Some(KriValue::Int(latest_tick.unwrap_or(-1))), vec![], 0));
    let tick_groups: BTreeSet<&str> =
        ticks.iter().filter(|t| t.n.is_some_and(|n| n > 5)).filter_map(|t| t.g.as_deref()).collect();
    out.insert("ticks_groups", (int(tick_groups.len()), vec![], 0));
    let max_start = ticks.iter().filter(|t| within(Some(t.start), 90 * 60_000)).map(|t| t.start).max().unwrap_or(0);
    out.insert("ticks_max", (Some(KriValue::Int(max_start)), vec![], 0));
    let by_id: BTreeMap<&str, &Item> = items.iter().map(|i| (i.id.as_str(), i)).collect();
    let looked_up = items
        .iter()
        .filter(|i| i.g.as_deref().and_then(|g| by_id.get(g)).is_some_and(|target| target.flag == Some(true)))
        .count();
    out.insert("looked_up", (int(looked_up), vec![], 0));
    let existing = items.iter().filter(|i| i.g.as_deref().is_some_and(|g| by_id.contains_key(g))).count();
    out.insert("existing", (int(existing), vec![], 0));
    let edges: BTreeSet<(&str, &str)> = links.iter().map(|l| (l.from.as_str(), l.to.as_str())).collect();
    let linked = items.iter().filter(|i| i.g.as_deref().is_some_and(|g| edges.contains(&(i.id.as_str(), g)))).count();
    out.insert("linked", (int(linked), vec![], 0));
    // The same as `sum_n`, through a lookup of each item's own `n`: ids in order, read ahead.
    out.insert("self_n", out["sum_n"].clone());
    // Edges are one row per (from, to): the last write of a pair wins.
    let mut weights: BTreeMap<(&str, &str), i64> = BTreeMap::new();
    for l in links {
        weights.insert((l.from.as_str(), l.to.as_str()), l.w);
    }
    let targets: BTreeSet<&str> = weights.iter().filter(|(_, w)| **w > 2).map(|((_, to), _)| *to).collect();
    out.insert(
        "link_targets",
        (int(targets.len()), targets.iter().take(50).map(|s| s.to_string()).collect(), targets.len() as u64),
    );
    let ratio = if items.is_empty() {
        0.0
    } else {
        engine::expr::percent(
            engine::expr::Number::Int(flagged.len() as i64),
            engine::expr::Number::Int(items.len() as i64),
            2,
        )
    };
    out.insert("ratio", (Some(KriValue::Float(ratio)), vec![], 0));
    out
}

fn property_spec() -> &'static Spec {
    static SPEC: OnceLock<Spec> = OnceLock::new();
    SPEC.get_or_init(|| {
        let validated = engine::validate::validate(&Source::new("prop.yaml", PROPERTY_SPEC));
        let errors: Vec<_> = validated.diagnostics.iter().filter(|d| d.is_error()).collect();
        assert!(errors.is_empty(), "{errors:#?}");
        validated.spec.expect("property spec valid")
    })
}

/// Checks every property KRI against the reference; returns the slugs whose value was neither 0 nor empty,
/// so the caller can tell the data exercised them.
fn check_against_reference(seed: u64, size: usize, strategies: &[LookupStrategy]) -> Vec<String> {
    let (items, ticks, links) = generate(seed, size);
    let (store, _dir) = property_store(&format!("prop-{seed}-{size}"), &items, &ticks, &links);
    let expected = reference(&items, &ticks, &links);
    let with_evidence = ["all_items", "flagged", "groups", "sum_n", "self_n", "ticks_hour", "link_targets"];
    for (n, &lookups) in strategies.iter().enumerate() {
        // One thread and whole tables, then several threads sharing slices of 7 rows: the results must not
        // depend on how scans are split.
        let (threads, slice_rows) = if n % 2 == 0 { (1, 0) } else { (3, 7) };
        let options = KriOptions { lookups, threads, slice_rows, ..KriOptions::new("p", NOW_MS) };
        let results = kri::compute(property_spec(), &store, &options, None).expect("compute");
        assert_eq!(results.len(), expected.len());
        for result in &results {
            let (value, evidence, count) = &expected[result.slug.as_str()];
            let context = format!("seed {seed}, size {size}, {lookups:?}, {}: {result:#?}", result.slug);
            assert_eq!(result.status, KriStatus::Ok, "{context}");
            match (result.value, value) {
                (Some(KriValue::Float(a)), Some(KriValue::Float(b))) => {
                    assert!((a - b).abs() <= 1e-9 * b.abs().max(1.0), "{context}: expected {b}")
                }
                (a, b) => assert_eq!(a, *b, "{context}"),
            }
            if with_evidence.contains(&result.slug.as_str()) {
                assert_eq!((&result.evidence, result.evidence_count), (evidence, *count), "{context}");
            }
        }
    }
    expected
        .iter()
        .filter(|(_, (value, _, _))| value.is_some_and(|v| v.as_f64() != 0.0 && v.as_f64() != -1.0))
        .map(|(slug, _)| slug.to_string())
        .collect()
}

#[test]
fn aggregates_match_a_naive_reference_on_pseudo_random_rows() {
    let mut exercised = std::collections::BTreeSet::new();
    for seed in 1..=12 {
        let size = 40 + (seed as usize * 37) % 200;
        exercised.extend(check_against_reference(seed, size, &[LookupStrategy::Auto, LookupStrategy::PrimaryKey]));
    }
    let all: std::collections::BTreeSet<String> = reference(&[], &[], &[]).keys().map(|s| s.to_string()).collect();
    assert_eq!(exercised, all, "every aggregate met data that gives it a value");
    // No rows at all: counts are 0, the rest empty.
    check_against_reference(99, 0, &[LookupStrategy::Auto]);
}

#[test]
fn lookups_switch_from_keys_to_an_index_without_changing_results() {
    // More calls than the automatic strategy queries by key before it builds the index (the predicates
    // read `id`, so remembering verdicts does not save the calls).
    check_against_reference(7, 3_000, &[LookupStrategy::Auto, LookupStrategy::Index, LookupStrategy::PrimaryKey]);
}

// ---------------------------------------------------------------------------------------------------------
// End to end: `engine run` and `engine kri`

#[tokio::test]
async fn engine_run_evaluates_kris_even_when_the_sync_fails_entirely() {
    // The token endpoint refuses the credentials: nothing is read.
    let server = Server::start(|seen, _| {
        if seen.path.ends_with("/token") {
            Reply::status(
                401,
                json!({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret."}),
            )
        } else {
            Reply::status(404, json!({}))
        }
    })
    .await;
    let spec = entra();
    let text = format!(
        "instance: {INSTANCE}\nconfig:\n  tenant_id: contoso.onmicrosoft.com\n  client_id: 11111111-2222-3333-4444-555555555555\n  \
         client_secret: {{ env: TEST_SECRET }}\n  graph_base_url: {0}/v1.0\n  login_base_url: {0}\n",
        server.base
    );
    let config = config::load(&Source::new("config.yaml", text), spec, &|_| Some("s3cret".into())).expect("config");
    let dir = TempDir::new("kri-test-run-failed");
    let mut store = Store::open(dir.store()).expect("store");
    let report =
        run(spec, &config, &mut store, RunOptions { now_ms: NOW_MS, ..RunOptions::default() }).await.expect("run");
    assert_eq!(report.status, RunStatus::Failed);
    assert_eq!(report.kris.len(), 10, "{report:#?}");
    for k in &report.kris {
        assert!(matches!(k.status, KriStatus::Degraded | KriStatus::NotApplicable), "{k:#?}");
        assert!(k.reason.is_some(), "{k:#?}");
    }
    let json = serde_json::to_value(&report).expect("json");
    let mfa = &json["kris"][MFA];
    assert_eq!(mfa["value"], json!(0.0));
    assert_eq!(mfa["status"], "degraded");
    assert_eq!(mfa["band"], "red");
    assert_eq!(mfa["evidence"], json!([]));
    assert!(mfa["reason"].as_str().unwrap_or_default().contains("C-URD-ERR"));
    assert_eq!(json["kris"][RISKY]["value"], Value::Null);
    // Stored under the run.
    let stored = store.latest_kris(INSTANCE).expect("latest");
    assert_eq!(stored.len(), 10);
    assert!(stored.iter().all(|k| k.run_id.as_deref() == Some(report.run_id.as_str())));
}

#[test]
fn engine_kri_recomputes_from_the_store_alone() {
    let mut t = Tenant::healthy();
    t.push("users", user_row("g02", with(member("g02"), json!({"userType": "Guest"}))));
    t.unavailable("signins", ResourceStatus::NotApplicable);
    let (store, dir) = t.store("cli");
    drop(store);
    let path = dir.store();
    let engine = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_engine"))
            .arg("kri")
            .arg(crate::repo_path("specs/entra-id.yaml"))
            .arg("--store")
            .arg(&path)
            .args(args)
            .output()
            .expect("engine runs");
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    // No config and one instance in the store: that instance, every KRI, the spec's bands.
    let (code, stdout, stderr) = engine(&["--now", "2025-06-30T12:00:00Z", "--format", "json"]);
    assert_eq!(code, Some(3), "degraded: {stdout}{stderr}");
    let json: Value = serde_json::from_str(&stdout).expect("json output");
    assert_eq!(json["instance"], INSTANCE);
    assert_eq!(json["kris"][GUESTS]["value"], json!(2));
    assert_eq!(json["kris"][GUESTS]["evidence"], json!(["g01", "g02"]));
    assert_eq!(json["kris"][GUESTS]["unit"], "count");
    assert_eq!(json["kris"][FAILED]["status"], "degraded");
    assert_eq!(json["kris"][MFA]["value"], json!(100.0));
    let keys: Vec<&str> = json["kris"].as_object().expect("map").keys().map(String::as_str).collect();
    assert_eq!(keys[0], MFA, "spec order");

    let (code, stdout, _) = engine(&["--now", "2025-06-30T13:00:00Z"]);
    assert_eq!(code, Some(3));
    assert!(stdout.contains("entra_mfa_enrollment_pct") && stdout.contains("100%"), "{stdout}");
    assert!(stdout.contains("C-SIGNIN-ERR"), "{stdout}");

    let store = Store::open(&path).expect("store");
    assert_eq!(store.kri_history(INSTANCE, GUESTS).expect("history").len(), 2, "each recomputation is kept");

    let (code, _, stderr) = engine(&["--instance", "nobody", "--now", "2025-06-30T12:00:00Z"]);
    assert_eq!(code, Some(0), "no run for that instance: nothing is degraded, all counts are 0 ({stderr})");
    let missing = std::env::temp_dir().join(format!("engine-kri-missing-{}.db", std::process::id()));
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_engine"))
        .arg("kri")
        .arg(crate::repo_path("specs/entra-id.yaml"))
        .arg("--store")
        .arg(&missing)
        .output()
        .expect("engine runs");
    assert_eq!(output.status.code(), Some(2));
    assert!(!missing.exists(), "a mistyped store path is not created");
}
