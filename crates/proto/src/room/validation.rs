//! The rules of `CreateRoomReq` (protovalidate's annotations in Plug-N-Meet's proto files).

use crate::ids::{IdError, RoomId};
use crate::validate::{is_uri, Violations};

use super::{CreateRoomReq, RoomCreateFeatures};

/// Checks every rule of `CreateRoomReq`, collecting all violations.
pub fn validate_create(req: &CreateRoomReq) -> Result<(), Violations> {
    let mut v = Violations::default();
    match RoomId::parse(&req.room_id) {
        Ok(_) => {}
        Err(e @ IdError::Charset { .. }) => v.push("room_id", e.to_string(), "room_id_format"),
        Err(e) => v.push("room_id", e.to_string(), "room_id_reserved"),
    }
    if req.empty_timeout == Some(0) {
        v.push("empty_timeout", "value must be greater than 0", "uint32.gt");
    }
    if req.max_participants == Some(0) {
        v.push(
            "max_participants",
            "value must be greater than 0",
            "uint32.gt",
        );
    }
    let Some(m) = &req.metadata else {
        v.push("metadata", "value is required", "required");
        return v.into_result();
    };
    if m.room_title.is_empty() {
        v.push("metadata.room_title", "value is required", "required");
    }
    v.must_be_empty("metadata.is_recording", &m.is_recording);
    v.must_be_empty("metadata.is_active_rtmp", &m.is_active_rtmp);
    v.must_be_empty("metadata.parent_room_id", &m.parent_room_id);
    v.must_be_empty("metadata.is_breakout_room", &m.is_breakout_room);
    v.must_be_empty("metadata.started_at", &m.started_at);
    v.must_be_empty(
        "metadata.metadata_id",
        &m.metadata_id.clone().unwrap_or_default(),
    );
    for (field, url) in [
        ("metadata.webhook_url", &m.webhook_url),
        ("metadata.logout_url", &m.logout_url),
    ] {
        if let Some(u) = url {
            if !is_uri(u) {
                v.push(field, "value must be a valid URI", "string.uri");
            }
        }
    }
    let Some(f) = &m.room_features else {
        v.push("metadata.room_features", "value is required", "required");
        return v.into_result();
    };
    validate_internal_features(f, &mut v);
    v.into_result()
}

fn validate_internal_features(f: &RoomCreateFeatures, v: &mut Violations) {
    const P: &str = "metadata.room_features";
    if let Some(s) = &f.shared_note_pad_features {
        v.must_be_empty(
            &format!("{P}.shared_note_pad_features.is_active"),
            &s.is_active,
        );
        v.must_be_empty(&format!("{P}.shared_note_pad_features.visible"), &s.visible);
        v.must_be_empty(
            &format!("{P}.shared_note_pad_features.note_pad_id"),
            &s.note_pad_id,
        );
    }
    if let Some(w) = &f.whiteboard_features {
        let p = format!("{P}.whiteboard_features");
        v.must_be_empty(&format!("{p}.visible"), &w.visible);
        v.must_be_empty(&format!("{p}.whiteboard_file_id"), &w.whiteboard_file_id);
        v.must_be_empty(&format!("{p}.file_name"), &w.file_name);
        v.must_be_empty(&format!("{p}.file_path"), &w.file_path);
        v.must_be_empty(
            &format!("{p}.max_allowed_file_size"),
            &w.max_allowed_file_size.unwrap_or(0),
        );
        if let Some(u) = &w.preload_file {
            if !is_uri(u) {
                v.push(
                    format!("{p}.preload_file"),
                    "value must be a valid URI",
                    "string.uri",
                );
            }
        }
    }
    if let Some(e) = &f.external_media_player_features {
        let p = format!("{P}.external_media_player_features");
        v.must_be_empty(&format!("{p}.is_active"), &e.is_active);
        v.must_be_empty(
            &format!("{p}.shared_by"),
            &e.shared_by.clone().unwrap_or_default(),
        );
        v.must_be_empty(&format!("{p}.url"), &e.url.clone().unwrap_or_default());
    }
    if let Some(b) = &f.breakout_room_features {
        v.must_be_empty(
            &format!("{P}.breakout_room_features.is_active"),
            &b.is_active,
        );
    }
    if let Some(d) = &f.display_external_link_features {
        v.must_be_empty(
            &format!("{P}.display_external_link_features.is_active"),
            &d.is_active,
        );
    }
    if let Some(i) = &f.ingress_features {
        v.must_be_empty(&format!("{P}.ingress_features.url"), &i.url);
        v.must_be_empty(&format!("{P}.ingress_features.stream_key"), &i.stream_key);
    }
    if let Some(e) = &f.end_to_end_encryption_features {
        v.must_be_empty(
            &format!("{P}.end_to_end_encryption_features.encryption_key"),
            &e.encryption_key.clone().unwrap_or_default(),
        );
    }
    if let Some(p) = &f.polls_features {
        v.must_be_empty(&format!("{P}.polls_features.is_active"), &p.is_active);
    }
    if let Some(s) = &f.sip_dial_in_features {
        let p = format!("{P}.sip_dial_in_features");
        v.must_be_empty(&format!("{p}.is_active"), &s.is_active);
        v.must_be_empty(&format!("{p}.phone_numbers"), &s.phone_numbers);
        v.must_be_empty(&format!("{p}.pin"), &s.pin.clone().unwrap_or_default());
        v.must_be_empty(
            &format!("{p}.dispatch_rule_id"),
            &s.dispatch_rule_id.clone().unwrap_or_default(),
        );
    }
    if let Some(i) = &f.insights_features {
        let p = format!("{P}.insights_features");
        if let Some(t) = &i.transcription_features {
            let p = format!("{p}.transcription_features");
            v.must_be_empty(&format!("{p}.is_enabled"), &t.is_enabled);
            v.must_be_empty(
                &format!("{p}.allowed_spoken_langs"),
                &t.allowed_spoken_langs,
            );
            v.must_be_empty(
                &format!("{p}.allowed_speech_users"),
                &t.allowed_speech_users,
            );
            v.must_be_empty(
                &format!("{p}.is_enabled_translation"),
                &t.is_enabled_translation,
            );
            v.must_be_empty(
                &format!("{p}.max_selected_trans_langs"),
                &t.max_selected_trans_langs,
            );
            v.must_be_empty(&format!("{p}.allowed_trans_langs"), &t.allowed_trans_langs);
            v.must_be_empty(
                &format!("{p}.default_subtitle_lang"),
                &t.default_subtitle_lang.clone().unwrap_or_default(),
            );
            v.must_be_empty(
                &format!("{p}.is_enabled_speech_synthesis"),
                &t.is_enabled_speech_synthesis,
            );
        }
        if let Some(c) = &i.chat_translation_features {
            let p = format!("{p}.chat_translation_features");
            v.must_be_empty(&format!("{p}.is_enabled"), &c.is_enabled);
            v.must_be_empty(&format!("{p}.allowed_trans_langs"), &c.allowed_trans_langs);
            v.must_be_empty(
                &format!("{p}.max_selected_trans_langs"),
                &c.max_selected_trans_langs,
            );
            v.must_be_empty(
                &format!("{p}.default_lang"),
                &c.default_lang.clone().unwrap_or_default(),
            );
        }
        if let Some(a) = &i.ai_features {
            let p = format!("{p}.ai_features");
            if let Some(t) = &a.ai_text_chat_features {
                let p = format!("{p}.ai_text_chat_features");
                v.must_be_empty(&format!("{p}.is_enabled"), &t.is_enabled);
                v.must_be_empty(&format!("{p}.is_allowed_everyone"), &t.is_allowed_everyone);
                v.must_be_empty(&format!("{p}.allowed_user_ids"), &t.allowed_user_ids);
                v.must_be_empty(
                    &format!("{p}.is_notepad_ai_disabled"),
                    &t.is_notepad_ai_disabled,
                );
                v.must_be_empty(
                    &format!("{p}.is_whiteboard_ai_disabled"),
                    &t.is_whiteboard_ai_disabled,
                );
            }
            if let Some(s) = &a.meeting_summarization_features {
                v.must_be_empty(
                    &format!("{p}.meeting_summarization_features.is_enabled"),
                    &s.is_enabled,
                );
            }
        }
    }
}
