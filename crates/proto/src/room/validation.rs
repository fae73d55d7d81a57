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
    let mut internal = Internal::new(&mut v, "metadata".to_owned());
    internal.empty("is_recording", &m.is_recording);
    internal.empty("is_active_rtmp", &m.is_active_rtmp);
    internal.empty("parent_room_id", &m.parent_room_id);
    internal.empty("is_breakout_room", &m.is_breakout_room);
    internal.empty("started_at", &m.started_at);
    internal.empty_opt("metadata_id", &m.metadata_id);
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

/// The internal fields of the features, which only the server sets.
fn validate_internal_features(f: &RoomCreateFeatures, v: &mut Violations) {
    let at = |message: &str| format!("metadata.room_features.{message}");
    if let Some(s) = &f.shared_note_pad_features {
        let mut m = Internal::new(v, at("shared_note_pad_features"));
        m.empty("is_active", &s.is_active);
        m.empty("visible", &s.visible);
        m.empty("note_pad_id", &s.note_pad_id);
    }
    if let Some(w) = &f.whiteboard_features {
        let mut m = Internal::new(v, at("whiteboard_features"));
        m.empty("visible", &w.visible);
        m.empty("whiteboard_file_id", &w.whiteboard_file_id);
        m.empty("file_name", &w.file_name);
        m.empty("file_path", &w.file_path);
        m.empty_opt("max_allowed_file_size", &w.max_allowed_file_size);
        if let Some(u) = &w.preload_file {
            if !is_uri(u) {
                let field = m.field("preload_file");
                m.v.push(field, "value must be a valid URI", "string.uri");
            }
        }
    }
    if let Some(e) = &f.external_media_player_features {
        let mut m = Internal::new(v, at("external_media_player_features"));
        m.empty("is_active", &e.is_active);
        m.empty_opt("shared_by", &e.shared_by);
        m.empty_opt("url", &e.url);
    }
    if let Some(b) = &f.breakout_room_features {
        Internal::new(v, at("breakout_room_features")).empty("is_active", &b.is_active);
    }
    if let Some(d) = &f.display_external_link_features {
        Internal::new(v, at("display_external_link_features")).empty("is_active", &d.is_active);
    }
    if let Some(i) = &f.ingress_features {
        let mut m = Internal::new(v, at("ingress_features"));
        m.empty("url", &i.url);
        m.empty("stream_key", &i.stream_key);
    }
    if let Some(e) = &f.end_to_end_encryption_features {
        Internal::new(v, at("end_to_end_encryption_features"))
            .empty_opt("encryption_key", &e.encryption_key);
    }
    if let Some(p) = &f.polls_features {
        Internal::new(v, at("polls_features")).empty("is_active", &p.is_active);
    }
    if let Some(s) = &f.sip_dial_in_features {
        let mut m = Internal::new(v, at("sip_dial_in_features"));
        m.empty("is_active", &s.is_active);
        m.empty("phone_numbers", &s.phone_numbers);
        m.empty_opt("pin", &s.pin);
        m.empty_opt("dispatch_rule_id", &s.dispatch_rule_id);
    }
    let Some(i) = &f.insights_features else {
        return;
    };
    if let Some(t) = &i.transcription_features {
        let mut m = Internal::new(v, at("insights_features.transcription_features"));
        m.empty("is_enabled", &t.is_enabled);
        m.empty("allowed_spoken_langs", &t.allowed_spoken_langs);
        m.empty("allowed_speech_users", &t.allowed_speech_users);
        m.empty("is_enabled_translation", &t.is_enabled_translation);
        m.empty("max_selected_trans_langs", &t.max_selected_trans_langs);
        m.empty("allowed_trans_langs", &t.allowed_trans_langs);
        m.empty_opt("default_subtitle_lang", &t.default_subtitle_lang);
        m.empty(
            "is_enabled_speech_synthesis",
            &t.is_enabled_speech_synthesis,
        );
    }
    if let Some(c) = &i.chat_translation_features {
        let mut m = Internal::new(v, at("insights_features.chat_translation_features"));
        m.empty("is_enabled", &c.is_enabled);
        m.empty("allowed_trans_langs", &c.allowed_trans_langs);
        m.empty("max_selected_trans_langs", &c.max_selected_trans_langs);
        m.empty_opt("default_lang", &c.default_lang);
    }
    let Some(a) = &i.ai_features else {
        return;
    };
    if let Some(t) = &a.ai_text_chat_features {
        let mut m = Internal::new(v, at("insights_features.ai_features.ai_text_chat_features"));
        m.empty("is_enabled", &t.is_enabled);
        m.empty("is_allowed_everyone", &t.is_allowed_everyone);
        m.empty("allowed_user_ids", &t.allowed_user_ids);
        m.empty("is_notepad_ai_disabled", &t.is_notepad_ai_disabled);
        m.empty("is_whiteboard_ai_disabled", &t.is_whiteboard_ai_disabled);
    }
    if let Some(s) = &a.meeting_summarization_features {
        Internal::new(
            v,
            at("insights_features.ai_features.meeting_summarization_features"),
        )
        .empty("is_enabled", &s.is_enabled);
    }
}

/// The fields of one message (`prefix`, a dotted path) that a create request must leave empty.
struct Internal<'a> {
    v: &'a mut Violations,
    prefix: String,
}

impl<'a> Internal<'a> {
    fn new(v: &'a mut Violations, prefix: String) -> Self {
        Self { v, prefix }
    }

    /// The dotted path of `leaf`.
    fn field(&self, leaf: &str) -> String {
        format!("{}.{leaf}", self.prefix)
    }

    /// Records `leaf` unless `value` is its type's default.
    fn empty<T: Default + PartialEq>(&mut self, leaf: &str, value: &T) {
        let field = self.field(leaf);
        self.v.must_be_empty(&field, value);
    }

    /// The same for an optional field: unset counts as empty, and so does a set default.
    fn empty_opt<T: Clone + Default + PartialEq>(&mut self, leaf: &str, value: &Option<T>) {
        self.empty(leaf, &value.clone().unwrap_or_default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_internal_field_is_refused_by_its_path() {
        let body = br#"{"room_id":"r","metadata":{"room_title":"T","is_recording":true,
            "is_active_rtmp":true,"parent_room_id":"p","is_breakout_room":true,"started_at":1,
            "metadata_id":"m","room_features":{
            "shared_note_pad_features":{"is_active":true,"visible":true,"note_pad_id":"n"},
            "whiteboard_features":{"visible":true,"whiteboard_file_id":"w","file_name":"f",
                "file_path":"p","max_allowed_file_size":"3","preload_file":"not a uri"},
            "external_media_player_features":{"is_active":true,"shared_by":"u","url":"x"},
            "breakout_room_features":{"is_active":true},
            "display_external_link_features":{"is_active":true},
            "ingress_features":{"url":"u","stream_key":"k"},
            "end_to_end_encryption_features":{"encryption_key":"k"},
            "polls_features":{"is_active":true},
            "sip_dial_in_features":{"is_active":true,"phone_numbers":["1"],"pin":"1",
                "dispatch_rule_id":"d"},
            "insights_features":{
                "transcription_features":{"is_enabled":true,"allowed_spoken_langs":["en"],
                    "allowed_speech_users":["u"],"is_enabled_translation":true,
                    "max_selected_trans_langs":2,"allowed_trans_langs":["de"],
                    "default_subtitle_lang":"en","is_enabled_speech_synthesis":true},
                "chat_translation_features":{"is_enabled":true,"allowed_trans_langs":["de"],
                    "max_selected_trans_langs":2,"default_lang":"en"},
                "ai_features":{
                    "ai_text_chat_features":{"is_enabled":true,"is_allowed_everyone":true,
                        "allowed_user_ids":["u"],"is_notepad_ai_disabled":true,
                        "is_whiteboard_ai_disabled":true},
                    "meeting_summarization_features":{"is_enabled":true}}}}}}"#;
        let req: CreateRoomReq = crate::json::decode(body).unwrap();
        let fields: Vec<String> = validate_create(&req)
            .unwrap_err()
            .iter()
            .map(|v| v.field.clone())
            .collect();
        let f = "metadata.room_features";
        let expected: Vec<String> = [
            "metadata.is_recording",
            "metadata.is_active_rtmp",
            "metadata.parent_room_id",
            "metadata.is_breakout_room",
            "metadata.started_at",
            "metadata.metadata_id",
        ]
        .map(String::from)
        .into_iter()
        .chain(
            [
                "shared_note_pad_features.is_active",
                "shared_note_pad_features.visible",
                "shared_note_pad_features.note_pad_id",
                "whiteboard_features.visible",
                "whiteboard_features.whiteboard_file_id",
                "whiteboard_features.file_name",
                "whiteboard_features.file_path",
                "whiteboard_features.max_allowed_file_size",
                "whiteboard_features.preload_file",
                "external_media_player_features.is_active",
                "external_media_player_features.shared_by",
                "external_media_player_features.url",
                "breakout_room_features.is_active",
                "display_external_link_features.is_active",
                "ingress_features.url",
                "ingress_features.stream_key",
                "end_to_end_encryption_features.encryption_key",
                "polls_features.is_active",
                "sip_dial_in_features.is_active",
                "sip_dial_in_features.phone_numbers",
                "sip_dial_in_features.pin",
                "sip_dial_in_features.dispatch_rule_id",
                "insights_features.transcription_features.is_enabled",
                "insights_features.transcription_features.allowed_spoken_langs",
                "insights_features.transcription_features.allowed_speech_users",
                "insights_features.transcription_features.is_enabled_translation",
                "insights_features.transcription_features.max_selected_trans_langs",
                "insights_features.transcription_features.allowed_trans_langs",
                "insights_features.transcription_features.default_subtitle_lang",
                "insights_features.transcription_features.is_enabled_speech_synthesis",
                "insights_features.chat_translation_features.is_enabled",
                "insights_features.chat_translation_features.allowed_trans_langs",
                "insights_features.chat_translation_features.max_selected_trans_langs",
                "insights_features.chat_translation_features.default_lang",
                "insights_features.ai_features.ai_text_chat_features.is_enabled",
                "insights_features.ai_features.ai_text_chat_features.is_allowed_everyone",
                "insights_features.ai_features.ai_text_chat_features.allowed_user_ids",
                "insights_features.ai_features.ai_text_chat_features.is_notepad_ai_disabled",
                "insights_features.ai_features.ai_text_chat_features.is_whiteboard_ai_disabled",
                "insights_features.ai_features.meeting_summarization_features.is_enabled",
            ]
            .map(|leaf| format!("{f}.{leaf}")),
        )
        .collect();
        assert_eq!(fields, expected);
    }
}
