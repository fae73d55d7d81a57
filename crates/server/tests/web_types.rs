//! The web client's declarations of what the server sends (web/src/protocol.ts, web/src/api.ts)
//! checked against the server's own types (`enclave_proto::browser`): every kind of server
//! message the server sends is one the client parses, with the fields the client reads, and
//! every top-level field of a browser API reply is one the client declares. A field renamed on
//! either side fails here rather than in a meeting.

use std::collections::{BTreeMap, BTreeSet};

use enclave_proto::breakout::BreakoutRoom;
use enclave_proto::browser::{
    Answer, RenewedToken, ServerMessage, Session, SessionE2ee, Verified, Waiting, WaitingList,
};
use enclave_proto::polls::PollInfo;

fn web_source(file: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../web/src")
        .join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A declared field: its name and whether it may be absent (`name?:`).
type Fields = BTreeMap<String, bool>;

/// The fields of one TypeScript object type body (`a: T; b?: U`), top level only.
fn fields_of(body: &str) -> Fields {
    let mut out = Fields::new();
    let (mut depth, mut start) = (0i32, 0usize);
    let mut parts = Vec::new();
    for (i, ch) in body.char_indices() {
        match ch {
            '{' | '(' | '[' | '<' => depth += 1,
            '}' | ')' | ']' | '>' => depth -= 1,
            ';' | '\n' if depth == 0 => {
                parts.push(&body[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&body[start..]);
    for part in parts {
        let part = part.trim();
        if part.is_empty()
            || part.starts_with("/*")
            || part.starts_with('*')
            || part.starts_with("//")
            || part.starts_with('[')
        {
            continue;
        }
        if let Some((name, _)) = part.split_once(':') {
            let name = name.trim();
            let optional = name.ends_with('?');
            out.insert(name.trim_end_matches('?').to_owned(), optional);
        }
    }
    out
}

/// The body of `export interface <name> { … }`.
fn interface(src: &str, name: &str) -> Fields {
    let at = src
        .find(&format!("export interface {name} {{"))
        .unwrap_or_else(|| panic!("web/src/api.ts declares no interface {name}"));
    let open = at + src[at..].find('{').expect("an interface has a body");
    let mut depth = 0;
    for (i, ch) in src[open..].char_indices() {
        match ch {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return fields_of(&src[open + 1..open + i]);
                }
            }
            _ => {}
        }
    }
    panic!("interface {name} is not closed");
}

/// The variants of `export type SystemMessage = | { type: 'X'; … } | …`, by their `type`.
fn system_message_variants(src: &str) -> BTreeMap<String, Fields> {
    let at = src
        .find("export type SystemMessage =")
        .expect("web/src/protocol.ts declares SystemMessage");
    let end = at + src[at..].find("};").expect("SystemMessage ends with `};`") + 1;
    let mut out = BTreeMap::new();
    let mut rest = &src[at..end];
    while let Some(open) = rest.find("| {") {
        let body_start = open + 3;
        let close = body_start + rest[body_start..].find('}').expect("a variant is closed");
        let fields = fields_of(&rest[body_start..close]);
        let kind = rest[body_start..close]
            .split_once("type: '")
            .and_then(|(_, t)| t.split_once('\''))
            .map(|(t, _)| t.to_owned())
            .expect("every variant names its type");
        out.insert(kind, fields);
        rest = &rest[close..];
    }
    out
}

fn keys(v: &serde_json::Value) -> BTreeSet<String> {
    v.as_object().expect("an object").keys().cloned().collect()
}

/// Every field the client requires is sent, and everything sent is declared.
fn agree(what: &str, sent: &serde_json::Value, declared: &Fields) {
    let sent = keys(sent);
    for (name, optional) in declared {
        assert!(
            *optional || sent.contains(name),
            "{what}: the client requires `{name}`, the server does not send it"
        );
    }
    for name in &sent {
        assert!(
            declared.contains_key(name),
            "{what}: the server sends `{name}`, the client does not declare it"
        );
    }
}

#[test]
fn every_server_message_is_one_the_client_parses_with_its_fields() {
    let variants = system_message_variants(&web_source("protocol.ts"));
    let declared: BTreeSet<&str> = variants.keys().map(String::as_str).collect();
    let sent: Vec<serde_json::Value> = ServerMessage::examples()
        .iter()
        .map(|m| serde_json::from_slice(&m.to_bytes()).unwrap())
        .collect();
    let kinds: BTreeSet<&str> = sent.iter().map(|v| v["type"].as_str().unwrap()).collect();
    assert_eq!(
        declared, kinds,
        "the kinds the client parses differ from those the server sends"
    );
    for v in &sent {
        let kind = v["type"].as_str().unwrap().to_owned();
        let mut fields = variants[&kind].clone();
        // Fields the server adds for clients other than ours (Plug-N-Meet's notification id,
        // sound and time) are optional to ours.
        for extra in ["id", "with_sound", "sent_at"] {
            fields.entry(extra.to_owned()).or_insert(true);
        }
        agree(&kind, v, &fields);
    }
}

#[test]
fn browser_api_replies_match_the_clients_declarations() {
    let api = web_source("api.ts");
    let session = Session {
        e2ee: SessionE2ee {
            secret: Some("s".into()),
            generation: Some(1),
            history_secret: Some("h".into()),
            content_secret: Some("c".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let verified =
        serde_json::to_value(Answer::success(Verified::Session(Box::new(session)))).unwrap();
    let declared = interface(&api, "VerifyReply");
    agree("verifyToken", &verified, &declared);
    for nested in ["room", "user", "media", "e2ee"] {
        let body = api[api.find("export interface VerifyReply").unwrap()..].to_owned();
        let field_at = body
            .find(&format!("\n  {nested}: {{"))
            .unwrap_or_else(|| panic!("VerifyReply.{nested}"));
        let open = field_at + body[field_at..].find('{').unwrap();
        let close = open + body[open..].find("};").unwrap();
        agree(
            &format!("verifyToken.{nested}"),
            &verified[nested],
            &fields_of(&body[open + 1..close]),
        );
    }
    let waiting =
        serde_json::to_value(Answer::success(Verified::Waiting(Waiting::default()))).unwrap();
    agree(
        "verifyToken (waiting)",
        &waiting,
        &interface(&api, "WaitingReply"),
    );
    let mut list = interface(&api, "WaitingListReply");
    list.entry("msg".to_owned()).or_insert(true);
    agree(
        "waitingRoom/list",
        &serde_json::to_value(Answer::success(WaitingList::default())).unwrap(),
        &list,
    );
    let mut renew = interface(&api, "RenewReply");
    renew.entry("msg".to_owned()).or_insert(true);
    agree(
        "renewToken",
        &serde_json::to_value(Answer::success(RenewedToken::default())).unwrap(),
        &renew,
    );
}

#[test]
fn polls_and_breakout_rooms_match_the_clients_declarations() {
    let api = web_source("api.ts");
    agree(
        "PollInfo",
        &serde_json::to_value(PollInfo::default()).unwrap(),
        &interface(&api, "PollInfo"),
    );
    let room = serde_json::to_value(BreakoutRoom::default()).unwrap();
    agree("BreakoutRoom", &room, &interface(&api, "BreakoutRoom"));
}

#[test]
fn the_checks_here_see_a_missing_field() {
    let declared = fields_of("a: string; b?: number;\n c: { d: boolean }");
    assert_eq!(declared.len(), 3);
    assert!(declared["b"]);
    let sent = serde_json::json!({ "a": "x" });
    let missing = std::panic::catch_unwind(|| agree("t", &sent, &declared));
    assert!(
        missing.is_err(),
        "a required field the server does not send must fail"
    );
    let extra = std::panic::catch_unwind(|| {
        agree(
            "t",
            &serde_json::json!({ "a": 1, "c": {}, "z": 0 }),
            &declared,
        )
    });
    assert!(
        extra.is_err(),
        "a field the client does not declare must fail"
    );
}
