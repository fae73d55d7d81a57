//! Attendance and analytics of one session, in Plug-N-Meet's `MEETING_ANALYTICS` shape.
//!
//! The room's owner records what it sees (joins, leaves, hands, polls) and what the media server
//! reports (who speaks, chat and reaction messages by topic); at the end, [`Analytics::export`]
//! writes Plug-N-Meet's `AnalyticsResult` as protojson (snake_case names, every field present,
//! 64-bit integers as strings). No content ever enters it: talk time comes from the audio level
//! header extension, chat is counted by topic (the payload is never read), and poll texts are
//! included only in a plain room (in an encrypted room they are ciphertext the server keeps for
//! the clients, and analytics files are meant to be read by people).

use std::collections::BTreeMap;

use enclave_proto::ids::UserId;
use serde_json::{json, Value};

use super::polls::Polls;

pub use crate::media::Activity;

#[derive(Debug, Default, Clone)]
struct EventData {
    total: u64,
    /// (Unix ms, value), for events that keep each occurrence.
    values: Vec<(i64, String)>,
}

impl EventData {
    fn add(&mut self, at: i64, value: String) {
        self.total += 1;
        self.values.push((at, value));
    }

    fn json(&self, name: &str) -> Value {
        json!({
            "name": name,
            "total": self.total,
            "values": self.values.iter().map(|(t, v)| json!({ "time": t.to_string(), "value": v })).collect::<Vec<_>>(),
        })
    }
}

#[derive(Debug, Clone)]
struct UserAnalytics {
    name: String,
    is_admin: bool,
    ex_user_id: Option<String>,
    events: BTreeMap<&'static str, EventData>,
    speaking_since: Option<i64>,
}

impl UserAnalytics {
    fn event(&mut self, name: &'static str) -> &mut EventData {
        self.events.entry(name).or_default()
    }

    fn stop_speaking(&mut self, at: i64) {
        if let Some(since) = self.speaking_since.take() {
            self.event("talked_duration").total += u64::try_from(at - since).unwrap_or(0);
        }
    }
}

/// The facts about the session the file starts with.
#[derive(Debug, Clone)]
pub struct SessionFacts {
    pub room_id: String,
    pub title: String,
    /// Unix seconds.
    pub created: i64,
    pub e2ee: bool,
}

/// A session's analytics, kept by the room's owner.
#[derive(Debug, Default)]
pub struct Analytics {
    users: BTreeMap<UserId, UserAnalytics>,
}

impl Analytics {
    fn user(&mut self, user: &UserId) -> Option<&mut UserAnalytics> {
        self.users.get_mut(user)
    }

    /// `user` joined at `at` (Unix ms): the first join makes them an attendee.
    pub fn joined(
        &mut self,
        user: &UserId,
        name: &str,
        is_admin: bool,
        ex_user_id: Option<String>,
        at: i64,
    ) {
        let u = self
            .users
            .entry(user.clone())
            .or_insert_with(|| UserAnalytics {
                name: name.to_owned(),
                is_admin,
                ex_user_id,
                events: BTreeMap::new(),
                speaking_since: None,
            });
        u.event("joined").add(at, String::new());
    }

    /// `user` left at `at`: a talk spurt still open ends here.
    pub fn left(&mut self, user: &UserId, at: i64) {
        if let Some(u) = self.user(user) {
            u.stop_speaking(at);
            u.event("left").add(at, String::new());
        }
    }

    /// The media server saw `user` do something.
    pub fn activity(&mut self, user: &UserId, what: Activity, at: i64) {
        let Some(u) = self.user(user) else {
            return;
        };
        match what {
            Activity::Speaking(true) => {
                if u.speaking_since.is_none() {
                    u.speaking_since = Some(at);
                    u.event("talked").total += 1;
                }
            }
            Activity::Speaking(false) => u.stop_speaking(at),
            Activity::PublicChat => u.event("public_chat").total += 1,
            Activity::PrivateChat => u.event("private_chat").total += 1,
            Activity::Reaction => u.event("reaction").total += 1,
        }
    }

    /// `user` raised their hand at `at`.
    pub fn hand_raised(&mut self, user: &UserId, at: i64) {
        if let Some(u) = self.user(user) {
            u.event("raise_hand").add(at, String::new());
        }
    }

    /// The file, at the session's end (`ended`, Unix ms). Poll events come from the polls
    /// themselves: created, closed with their counts, and each vote (the choice only where the
    /// poll is named; the texts only in a plain room).
    pub fn export(&self, s: &SessionFacts, polls: &Polls, ended: i64) -> Value {
        let mut users = self.users.clone();
        for u in users.values_mut() {
            u.stop_speaking(ended);
        }
        let mut added = EventData::default();
        let mut closed = EventData::default();
        for p in polls.all() {
            let mut v = json!({
                "poll_id": p.info.id,
                "options": p.info.options.iter().map(|o| if p.info.is_sealed { json!({ "id": o.id }) } else { json!({ "id": o.id, "text": o.text }) }).collect::<Vec<_>>(),
                "is_anonymous": p.info.is_anonymous,
            });
            if !p.info.is_sealed {
                v["question"] = p.info.question.clone().into();
            }
            added.add(p.info.created * 1000, v.to_string());
            if let Some(at) = p.closed_at {
                let counts: Vec<Value> = p
                    .info
                    .options
                    .iter()
                    .map(|o| json!({ "id": o.id, "vote_count": p.count(o.id) }))
                    .collect();
                closed.add(
                    at,
                    json!({ "poll_id": p.info.id, "total_responses": p.voters.len(), "options": counts }).to_string(),
                );
            }
            for (user, at, option) in p.votes() {
                if let Some(u) = users.get_mut(user) {
                    let v = match option {
                        Some(o) => json!({ "poll_id": p.info.id, "selected_option": o }),
                        None => json!({ "poll_id": p.info.id }),
                    };
                    u.event("voted_poll").add(at, v.to_string());
                }
            }
        }
        let mut room_events = Vec::new();
        if added.total > 0 {
            room_events.push(added.json("poll_added"));
        }
        if closed.total > 0 {
            room_events.push(closed.json("poll_ended"));
        }
        let ended_s = ended / 1000;
        json!({
            "room": {
                "room_id": s.room_id,
                "room_title": s.title,
                "room_total_users": users.len().to_string(),
                "room_creation": s.created.to_string(),
                "room_ended": ended_s.to_string(),
                "room_duration": (ended_s - s.created).max(0).to_string(),
                "enabled_e2ee": s.e2ee,
                "events": room_events,
            },
            "users": users.iter().map(|(id, u)| {
                let mut v = json!({
                    "user_id": id.as_str(),
                    "name": u.name,
                    "is_admin": u.is_admin,
                    "events": u.events.iter().map(|(n, e)| e.json(n)).collect::<Vec<_>>(),
                });
                if let Some(ex) = &u.ex_user_id {
                    v["ex_user_id"] = ex.clone().into();
                }
                v
            }).collect::<Vec<_>>(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use enclave_proto::polls::{CreatePollOptions, CreatePollReq};

    fn user(s: &str) -> UserId {
        UserId::parse(s).unwrap()
    }

    fn events(v: &Value, user: &str) -> BTreeMap<String, Value> {
        v["users"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["user_id"] == user)
            .unwrap()["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["name"].as_str().unwrap().to_owned(), e.clone()))
            .collect()
    }

    fn poll(polls: &mut Polls, sealed: bool, anonymous: bool) -> String {
        let text = |t: &str| {
            if sealed {
                use base64::Engine as _;
                base64::engine::general_purpose::STANDARD.encode([1u8; 40])
            } else {
                t.to_owned()
            }
        };
        let req = CreatePollReq {
            poll_id: format!("p{}", polls.all().count()),
            question: text("Lunch?"),
            options: vec![
                CreatePollOptions {
                    id: 1,
                    text: text("Pizza"),
                },
                CreatePollOptions {
                    id: 2,
                    text: text("Soup"),
                },
            ],
            is_anonymous: anonymous,
            live_results: false,
        };
        polls
            .create("r", req, &user("ann"), 1_000, sealed, || unreachable!())
            .unwrap()
    }

    #[test]
    fn attendance_talk_time_chat_and_hands_are_counted_per_user() {
        let mut a = Analytics::default();
        let (ann, bob) = (user("ann"), user("bob"));
        a.joined(&ann, "Ann", true, Some("lms-7".into()), 1_000_000);
        a.joined(&bob, "Bob", false, None, 1_001_000);
        a.activity(&bob, Activity::Speaking(true), 1_002_000);
        a.activity(&bob, Activity::Speaking(true), 1_002_500);
        a.activity(&bob, Activity::Speaking(false), 1_004_000);
        a.activity(&bob, Activity::Speaking(true), 1_010_000);
        a.left(&bob, 1_011_000);
        a.joined(&bob, "Bob", false, None, 1_020_000);
        for _ in 0..3 {
            a.activity(&bob, Activity::PublicChat, 1_020_500);
        }
        a.activity(&bob, Activity::PrivateChat, 1_021_000);
        a.activity(&bob, Activity::Reaction, 1_021_000);
        a.hand_raised(&bob, 1_022_000);
        a.activity(&ann, Activity::Speaking(true), 1_025_000);
        // Someone the room never saw join is not invented.
        a.activity(&user("ghost"), Activity::PublicChat, 1_025_000);
        let facts = SessionFacts {
            room_id: "r".into(),
            title: "T".into(),
            created: 990,
            e2ee: false,
        };
        let v = a.export(&facts, &Polls::default(), 1_030_000);
        assert_eq!(v["room"]["room_total_users"], "2");
        assert_eq!(
            (
                v["room"]["room_duration"].as_str(),
                v["room"]["room_ended"].as_str()
            ),
            (Some("40"), Some("1030"))
        );
        let b = events(&v, "bob");
        assert_eq!(b["joined"]["total"], 2);
        assert_eq!(b["joined"]["values"][1]["time"], "1020000");
        assert_eq!(b["left"]["total"], 1);
        assert_eq!(b["talked"]["total"], 2, "two spurts");
        assert_eq!(
            b["talked_duration"]["total"], 3_000,
            "2 s, then 1 s cut by the leave"
        );
        assert_eq!(
            (
                b["public_chat"]["total"].as_u64(),
                b["private_chat"]["total"].as_u64()
            ),
            (Some(3), Some(1))
        );
        assert_eq!(
            (
                b["reaction"]["total"].as_u64(),
                b["raise_hand"]["total"].as_u64()
            ),
            (Some(1), Some(1))
        );
        let a_ev = events(&v, "ann");
        assert_eq!(
            a_ev["talked_duration"]["total"], 5_000,
            "still speaking at the end"
        );
        assert_eq!(v["users"][0]["ex_user_id"], "lms-7");
        assert!(v["users"][1].get("ex_user_id").is_none());
    }

    #[test]
    fn polls_enter_with_their_counts_and_texts_only_in_a_plain_room() {
        for sealed in [false, true] {
            let mut polls = Polls::default();
            let mut a = Analytics::default();
            let (ann, bob, cat) = (user("ann"), user("bob"), user("cat"));
            for u in [&ann, &bob, &cat] {
                a.joined(u, u.as_str(), false, None, 1_000_000);
            }
            let named = poll(&mut polls, sealed, false);
            let anon = poll(&mut polls, sealed, true);
            polls.vote(&named, &bob, "Bob", 2, 1_001_000).unwrap();
            polls.vote(&anon, &cat, "Cat", 1, 1_002_000).unwrap();
            polls.close(&named, &ann, 1_003_000).unwrap();
            let facts = SessionFacts {
                room_id: "r".into(),
                title: "T".into(),
                created: 990,
                e2ee: sealed,
            };
            let v = a.export(&facts, &polls, 1_010_000);
            let room: BTreeMap<String, Value> = v["room"]["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| (e["name"].as_str().unwrap().to_owned(), e.clone()))
                .collect();
            assert_eq!(room["poll_added"]["total"], 2);
            let ended: Value =
                serde_json::from_str(room["poll_ended"]["values"][0]["value"].as_str().unwrap())
                    .unwrap();
            assert_eq!(ended["options"][1]["vote_count"], 1);
            let added = room["poll_added"]["values"][0]["value"].as_str().unwrap();
            assert_eq!(added.contains("Lunch?"), !sealed, "{added}");
            assert_eq!(added.contains("Pizza"), !sealed, "{added}");
            assert!(
                !v.to_string().contains("AQEBAQEB"),
                "no sealed text in the file either"
            );
            let bob_vote: Value = serde_json::from_str(
                events(&v, "bob")["voted_poll"]["values"][0]["value"]
                    .as_str()
                    .unwrap(),
            )
            .unwrap();
            assert_eq!(bob_vote["selected_option"], 2);
            let cat_vote: Value = serde_json::from_str(
                events(&v, "cat")["voted_poll"]["values"][0]["value"]
                    .as_str()
                    .unwrap(),
            )
            .unwrap();
            assert!(
                cat_vote.get("selected_option").is_none(),
                "an anonymous poll keeps no choice: {cat_vote}"
            );
        }
    }
}
