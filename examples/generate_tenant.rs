//! Writes a synthetic Microsoft Entra ID tenant as sandbox data for `specs/entra-id.yaml`: users with
//! members, guests, disabled, stale and never-signed-in accounts, MFA registration details, activated
//! directory roles whose members overlap (a user in three roles, a guest, a service principal and a group),
//! Conditional Access policies of every kind the coverage rule tells apart, sign-ins and directory audits
//! over the days before the anchor (failures and role changes among them, plus a day after the anchor
//! that a later run picks up), and risky users.
//!
//! The output is deterministic for given arguments. `examples/sandbox/entra-id` and the test fixtures are
//! written by it; large tenants for benchmarks too:
//!
//! ```sh
//! cargo run --release --example generate_tenant -- --users 100000 --signins 200000 --out /tmp/big \
//!     --extends examples/sandbox/entra-id
//! engine run specs/entra-id.yaml --sandbox /tmp/big --store /tmp/big.db
//! ```

use serde_json::{Value, json};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

const FIRST: [&str; 16] = [
    "Adele",
    "Alex",
    "Diego",
    "Grady",
    "Henrietta",
    "Isaiah",
    "Johanna",
    "Joni",
    "Lee",
    "Lidia",
    "Lynne",
    "Megan",
    "Miriam",
    "Nestor",
    "Patti",
    "Pradeep",
];
const LAST: [&str; 12] = [
    "Vance",
    "Wilber",
    "Siciliani",
    "Archie",
    "Mueller",
    "Langer",
    "Lorenz",
    "Sherman",
    "Gu",
    "Holloway",
    "Robbins",
    "Bowen",
];
const DAY: i64 = 86_400_000;

/// What to write; the benchmark builds one directly.
pub struct Args {
    pub users: usize,
    pub signins: usize,
    pub audits: Option<usize>,
    pub anchor_ms: i64,
    pub out: PathBuf,
    pub extends: Option<PathBuf>,
}

/// The anchor the bundled sandboxes use: 2026-11-20T12:00:00Z.
pub const ANCHOR_MS: i64 = 1_795_176_000_000;

fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!(
                "{message}\nusage: generate_tenant --users N --signins N --out DIR [--audits N] [--anchor RFC3339] [--extends DIR]"
            );
            std::process::exit(2);
        }
    };
    if let Err(e) = write_tenant(&args) {
        eprintln!("cannot write {}: {e}", args.out.display());
        std::process::exit(1);
    }
}

fn parse_args() -> Result<Args, String> {
    let mut args =
        Args { users: 300, signins: 1_000, audits: None, anchor_ms: ANCHOR_MS, out: PathBuf::new(), extends: None };
    let mut given = std::env::args().skip(1);
    while let Some(flag) = given.next() {
        let mut value = || given.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--users" => args.users = value()?.parse().map_err(|e| format!("--users: {e}"))?,
            "--signins" => args.signins = value()?.parse().map_err(|e| format!("--signins: {e}"))?,
            "--audits" => args.audits = Some(value()?.parse().map_err(|e| format!("--audits: {e}"))?),
            "--anchor" => {
                let text = value()?;
                args.anchor_ms = text.parse::<jiff::Timestamp>().map_err(|e| format!("--anchor: {e}"))?.as_millisecond()
            }
            "--out" => args.out = PathBuf::from(value()?),
            "--extends" => args.extends = Some(PathBuf::from(value()?)),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    if args.out.as_os_str().is_empty() {
        return Err("--out is required".into());
    }
    if args.users < 8 {
        return Err("--users must be at least 8 (the directory roles need them)".into());
    }
    Ok(args)
}

/// A small deterministic generator (splitmix64), so the same arguments give the same tenant.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

fn time(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()).unwrap_or_default()
}

fn guid(kind: u32, i: usize) -> String {
    format!("{kind:08x}-0000-4000-8000-{i:012x}")
}

struct User {
    id: String,
    upn: String,
    name: String,
    enabled: bool,
    guest: bool,
}

/// Writes the tenant's records (and, with `extends`, a `sandbox.yaml`) into `args.out`.
pub fn write_tenant(args: &Args) -> std::io::Result<()> {
    std::fs::create_dir_all(&args.out)?;
    let anchor = args.anchor_ms;
    let mut rng = Rng(42);
    let domain = "contoso.example";

    let mut users_file = Lines::create(&args.out, "users")?;
    let mut mfa_file = Lines::create(&args.out, "mfa_registration")?;
    let mut risky_file = Lines::create(&args.out, "risky_users")?;
    let mut users = Vec::with_capacity(args.users);
    for i in 0..args.users {
        let name = format!("{} {}", FIRST[i % FIRST.len()], LAST[(i / FIRST.len()) % LAST.len()]);
        // The first users are the administrators; guests and disabled accounts are spread over the rest.
        let guest = i == 6 || (i > 7 && rng.chance(8));
        let enabled = i < 8 || !rng.chance(7);
        let upn = if guest {
            format!("{}_{}.example#EXT#@{domain}", name.to_lowercase().replace(' ', "."), "fabrikam")
        } else {
            format!("{}{i}@{domain}", name.to_lowercase().replace(' ', "."))
        };
        let id = guid(0x0000_0001, i);
        // Sign-in history: recent for most, stale (over 90 days) for some, never for a few; user 7 signed in
        // exactly 90 days before the anchor (not stale) and user 8 a second earlier (stale).
        let last_signin = match i {
            7 => Some(anchor - 90 * DAY),
            8 => Some(anchor - 90 * DAY - 1_000),
            _ if rng.chance(5) => None,
            _ if rng.chance(10) => Some(anchor - (91 + rng.below(400) as i64) * DAY),
            _ => Some(anchor - rng.below(30 * DAY as u64) as i64),
        };
        let created = anchor - (100 + rng.below(1500) as i64) * DAY;
        let record = json!({
            "id": id,
            "displayName": name,
            "userPrincipalName": upn,
            "mail": if guest { json!(format!("{}@fabrikam.example", name.to_lowercase().replace(' ', "."))) } else if rng.chance(10) { Value::Null } else { json!(upn) },
            "accountEnabled": enabled,
            "userType": if guest { "Guest" } else { "Member" },
            "createdDateTime": time(created),
            "signInActivity": match last_signin {
                Some(at) => json!({"lastSignInDateTime": time(at), "lastNonInteractiveSignInDateTime": time(at + DAY / 2)}),
                None => json!({"lastSignInDateTime": null, "lastNonInteractiveSignInDateTime": null}),
            },
        });
        users_file.write(&record)?;
        // Registration details omit disabled users. Administrators 2 and 6 (the guest) have not registered.
        if enabled {
            let registered = !matches!(i, 2 | 6) && (i < 8 || rng.chance(85));
            let methods: Vec<&str> =
                if registered { vec!["microsoftAuthenticatorPush", "softwareOneTimePasscode"] } else { vec![] };
            mfa_file.write(&json!({
                "id": id,
                "userPrincipalName": upn,
                "userDisplayName": name,
                "userType": if guest { "guest" } else { "member" },
                "isAdmin": i < 8,
                "isMfaRegistered": registered,
                "isMfaCapable": registered,
                "isPasswordlessCapable": false,
                "isSsprRegistered": registered && rng.chance(50),
                "methodsRegistered": methods,
                "lastUpdatedDateTime": time(anchor - rng.below(60) as i64 * DAY),
            }))?;
        }
        if i > 0 && (i % 37 == 5 || rng.chance(2)) {
            let (level, state) = match rng.below(4) {
                0 => ("high", "atRisk"),
                1 => ("medium", "atRisk"),
                2 => ("low", "remediated"),
                _ => ("none", "dismissed"),
            };
            risky_file.write(&json!({
                "id": id,
                "isDeleted": false,
                "isProcessing": false,
                "riskLastUpdatedDateTime": time(anchor - rng.below(20) as i64 * DAY - 3_600_000),
                "riskLevel": level,
                "riskState": state,
                "riskDetail": if state == "remediated" { "userPerformedSecuredPasswordReset" } else { "none" },
                "userDisplayName": name,
                "userPrincipalName": upn,
            }))?;
        }
        users.push(User { id, upn, name, enabled, guest });
    }
    users_file.finish()?;
    mfa_file.finish()?;
    risky_file.finish()?;

    Lines::write_all(
        &args.out,
        "organization",
        &[json!({
            "id": "00000000-0000-4000-8000-00000000c0de",
            "displayName": "Contoso (sandbox)",
            "tenantType": "AAD",
            "createdDateTime": time(anchor - 2000 * DAY),
            "verifiedDomains": [
                {"name": domain, "isDefault": true, "isInitial": false, "type": "Managed", "capabilities": "Email, OfficeCommunicationsOnline"},
                {"name": "contoso.onmicrosoft.com", "isDefault": false, "isInitial": true, "type": "Managed", "capabilities": "Email"}
            ]
        })],
    )?;
    write_roles(&args.out, &users)?;
    write_policies(&args.out, &users)?;
    write_signins(&args.out, args, &users, &mut rng)?;
    write_audits(&args.out, args, &users, &mut rng)?;
    if let Some(extends) = &args.extends {
        let extends = std::path::absolute(extends)?;
        let out = std::path::absolute(&args.out)?;
        let relative = relative_path(&out, &extends);
        std::fs::write(
            args.out.join("sandbox.yaml"),
            format!(
                "# Written by `cargo run --example generate_tenant`: {} users, {} sign-ins.\nextends: {}\n",
                args.users,
                args.signins,
                relative.display()
            ),
        )?;
    }
    Ok(())
}

/// `to` relative to `from` when they share a prefix, else `to` itself.
fn relative_path(from: &Path, to: &Path) -> PathBuf {
    let from: Vec<_> = from.components().collect();
    let to_parts: Vec<_> = to.components().collect();
    let common = from.iter().zip(&to_parts).take_while(|(a, b)| a == b).count();
    if common == 0 {
        return to.to_path_buf();
    }
    let mut path = PathBuf::new();
    for _ in common..from.len() {
        path.push("..");
    }
    for part in &to_parts[common..] {
        path.push(part);
    }
    path
}

const ROLES: [(&str, &str, &str); 4] = [
    ("62e90394-69f5-4237-9190-012177145e10", "Global Administrator", "Can manage all aspects of Microsoft Entra ID."),
    ("e8611ab8-c189-46e8-94e1-60213ab1f814", "Privileged Role Administrator", "Can manage role assignments."),
    ("fe930be7-5e62-47db-91af-98c3a49a38b1", "User Administrator", "Can manage all aspects of users and groups."),
    ("5d6b6bb7-de71-4623-b4af-96380a352509", "Security Reader", "Can read security information and reports."),
];

fn role_id(index: usize) -> String {
    guid(0x0000_0002, index)
}

fn write_roles(out: &Path, users: &[User]) -> std::io::Result<()> {
    let roles: Vec<Value> = ROLES
        .iter()
        .enumerate()
        .map(|(i, (template, name, description))| {
            json!({"id": role_id(i), "displayName": name, "description": description, "roleTemplateId": template, "deletedDateTime": null})
        })
        .collect();
    Lines::write_all(out, "directory_roles", &roles)?;
    let user = |i: usize, role: usize| {
        let u = &users[i];
        json!({"_parent": role_id(role), "@odata.type": "#microsoft.graph.user", "id": u.id, "displayName": u.name, "userPrincipalName": u.upn, "accountEnabled": u.enabled})
    };
    let service_principal = |role: usize| json!({"_parent": role_id(role), "@odata.type": "#microsoft.graph.servicePrincipal", "id": guid(3, 1), "displayName": "Provisioning Connector", "appId": guid(4, 1)});
    let group = |role: usize| json!({"_parent": role_id(role), "@odata.type": "#microsoft.graph.group", "id": guid(5, 1), "displayName": "Tier 0 Admins", "isAssignableToRole": true});
    // User 1 holds three roles; user 6 is a guest administrator; users 2 and 6 lack MFA.
    let members = vec![
        user(0, 0),
        user(1, 0),
        user(2, 0),
        user(6, 0),
        service_principal(0),
        user(1, 1),
        group(1),
        user(1, 2),
        user(3, 2),
        user(4, 2),
        user(5, 3),
        user(6, 3),
    ];
    Lines::write_all(out, "directory_role_members", &members)
}

fn write_policies(out: &Path, users: &[User]) -> std::io::Result<()> {
    let policy = |i: usize, name: &str, state: &str, users_cond: Value, grant: Value| {
        json!({
            "id": guid(6, i),
            "displayName": name,
            "state": state,
            "createdDateTime": "2024-03-01T09:00:00Z",
            "modifiedDateTime": "2025-02-11T16:30:00Z",
            "conditions": {
                "users": users_cond,
                "applications": {"includeApplications": ["All"], "excludeApplications": []},
                "clientAppTypes": ["all"],
            },
            "grantControls": grant,
            "sessionControls": null,
        })
    };
    let all = |exclude: Vec<String>| json!({"includeUsers": ["All"], "excludeUsers": exclude, "includeGroups": [], "excludeGroups": [], "includeRoles": [], "excludeRoles": []});
    let mfa = json!({"operator": "OR", "builtInControls": ["mfa"], "customAuthenticationFactors": [], "termsOfUse": [], "authenticationStrength": null});
    let policies = vec![
        policy(1, "Baseline: require MFA for all users", "enabled", all(vec![]), mfa.clone()),
        policy(2, "Require MFA except break-glass", "enabled", all(vec![users[0].id.clone()]), mfa.clone()),
        policy(3, "Report-only: MFA for all users", "enabledForReportingButNotEnforced", all(vec![]), mfa.clone()),
        policy(
            4,
            "Block legacy authentication",
            "enabled",
            all(vec![]),
            json!({"operator": "OR", "builtInControls": ["block"], "customAuthenticationFactors": [], "termsOfUse": [], "authenticationStrength": null}),
        ),
        policy(
            5,
            "Phishing-resistant MFA for all users",
            "enabled",
            all(vec![]),
            json!({"operator": "OR", "builtInControls": [], "customAuthenticationFactors": [], "termsOfUse": [], "authenticationStrength": {"id": "00000000-0000-0000-0000-000000000004", "displayName": "Phishing-resistant MFA"}}),
        ),
        policy(
            6,
            "Sign-in frequency for guests (session only)",
            "enabled",
            json!({"includeUsers": ["GuestsOrExternalUsers"], "excludeUsers": []}),
            Value::Null,
        ),
        policy(
            7,
            "MFA for administrators",
            "enabled",
            json!({"includeUsers": [], "excludeUsers": [], "includeRoles": [ROLES[0].0, ROLES[2].0]}),
            mfa.clone(),
        ),
        policy(8, "Old MFA policy (disabled)", "disabled", all(vec![]), mfa),
    ];
    Lines::write_all(out, "conditional_access_policies", &policies)
}

const APPS: [(&str, &str); 4] = [
    ("00000002-0000-0ff1-ce00-000000000000", "Office 365 Exchange Online"),
    ("00000003-0000-0ff1-ce00-000000000000", "Office 365 SharePoint Online"),
    ("c44b4083-3bb0-49c1-b47d-974e53cbdf3c", "Azure Portal"),
    ("1fec8e78-bce4-4aaf-ab1b-5451cc387264", "Microsoft Teams"),
];
const PLACES: [(&str, &str); 4] = [("Oslo", "NO"), ("Seattle", "US"), ("Dublin", "IE"), ("Lagos", "NG")];
const FAILURES: [(i64, &str); 3] = [
    (50126, "Error validating credentials due to invalid username or password."),
    (50074, "Strong Authentication is required."),
    (53003, "Access has been blocked by Conditional Access policies."),
];

/// `count` event times, newest first as Graph lists logs: a tenth in the day after the anchor (a run at a
/// later clock reads them as new), the rest over the `days` before it.
fn event_times(count: usize, days: i64, anchor_ms: i64, rng: &mut Rng) -> Vec<i64> {
    let later = count / 10;
    let mut times: Vec<i64> = (0..count)
        .map(|i| {
            if i < later {
                anchor_ms + 1 + rng.below(DAY as u64 - 1) as i64
            } else {
                anchor_ms - rng.below((days * DAY) as u64) as i64
            }
        })
        .collect();
    times.sort_unstable_by(|a, b| b.cmp(a));
    times
}

fn write_signins(out: &Path, args: &Args, users: &[User], rng: &mut Rng) -> std::io::Result<()> {
    let times = event_times(args.signins, 7, args.anchor_ms, rng);
    let mut file = Lines::create(out, "signins")?;
    for (i, at) in times.into_iter().enumerate() {
        let user = &users[rng.below(users.len() as u64) as usize];
        let (app_id, app) = APPS[rng.below(APPS.len() as u64) as usize];
        let (city, country) = PLACES[rng.below(PLACES.len() as u64) as usize];
        let status = if rng.chance(12) {
            let (code, reason) = FAILURES[rng.below(FAILURES.len() as u64) as usize];
            json!({"errorCode": code, "failureReason": reason, "additionalDetails": null})
        } else {
            json!({"errorCode": 0, "failureReason": "Other.", "additionalDetails": null})
        };
        file.write(&json!({
            "id": guid(7, i),
            "createdDateTime": time(at),
            "userDisplayName": user.name,
            "userPrincipalName": user.upn.to_lowercase(),
            "userId": user.id,
            "appId": app_id,
            "appDisplayName": app,
            "ipAddress": format!("203.0.113.{}", rng.below(250) + 1),
            "clientAppUsed": "Browser",
            "conditionalAccessStatus": if user.guest { "notApplied" } else { "success" },
            "isInteractive": true,
            "riskLevelAggregated": "none",
            "riskState": "none",
            "status": status,
            "location": {"city": city, "state": null, "countryOrRegion": country},
        }))?;
    }
    file.finish()
}

fn write_audits(out: &Path, args: &Args, users: &[User], rng: &mut Rng) -> std::io::Result<()> {
    const ACTIVITIES: [(&str, &str); 6] = [
        ("UserManagement", "Update user"),
        ("UserManagement", "Reset user password"),
        ("GroupManagement", "Add member to group"),
        ("ApplicationManagement", "Update application"),
        ("RoleManagement", "Add member to role"),
        ("RoleManagement", "Remove member from role"),
    ];
    let count = args.audits.unwrap_or((args.signins / 8).max(12));
    let times = event_times(count, 6, args.anchor_ms, rng);
    let mut file = Lines::create(out, "directory_audits")?;
    for (i, at) in times.into_iter().enumerate() {
        let (category, activity) = ACTIVITIES[rng.below(ACTIVITIES.len() as u64) as usize];
        let actor = &users[rng.below(6) as usize];
        let target = &users[rng.below(users.len() as u64) as usize];
        file.write(&json!({
            "id": format!("Directory_{}", guid(8, i)),
            "category": category,
            "correlationId": guid(9, i),
            "result": "success",
            "resultReason": "",
            "activityDisplayName": activity,
            "activityDateTime": time(at),
            "loggedByService": "Core Directory",
            "operationType": if activity.starts_with("Remove") { "Unassign" } else if activity.starts_with("Add") { "Assign" } else { "Update" },
            "initiatedBy": {"user": {"id": actor.id, "displayName": actor.name, "userPrincipalName": actor.upn}, "app": null},
            "targetResources": [{"id": target.id, "displayName": target.name, "type": "User", "userPrincipalName": target.upn}],
            "additionalDetails": [],
        }))?;
    }
    file.finish()
}

/// A JSON Lines file, written as records come.
struct Lines(BufWriter<File>);

impl Lines {
    fn create(dir: &Path, resource: &str) -> std::io::Result<Lines> {
        Ok(Lines(BufWriter::new(File::create(dir.join(format!("{resource}.jsonl")))?)))
    }
    fn write(&mut self, record: &Value) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.0, record)?;
        self.0.write_all(b"\n")
    }
    fn finish(mut self) -> std::io::Result<()> {
        self.0.flush()
    }
    fn write_all(dir: &Path, resource: &str, records: &[Value]) -> std::io::Result<()> {
        let mut file = Lines::create(dir, resource)?;
        for record in records {
            file.write(record)?;
        }
        file.finish()
    }
}
