//! The feature defaults and the rules applied after the caller's features are merged over them.

use serde_json::Value;

use super::{RoomCreateFeatures, RoomPolicy};

/// The feature defaults, as a JSON document the caller's features are merged over.
pub fn default_features() -> Value {
    serde_json::json!({
        "allow_webcams": true,
        "mute_on_start": false,
        "allow_screen_share": true,
        "allow_view_other_webcams": true,
        "allow_view_other_users_list": true,
        "admin_only_webcams": false,
        "enable_analytics": true,
        "allow_virtual_bg": true,
        "allow_raise_hand": true,
        "allow_reactions": true,
        "auto_gen_user_id": false,
        "recording_features": {"is_allow": true, "is_allow_cloud": true, "is_allow_local": true, "enable_auto_cloud_recording": false},
        "chat_features": {"is_allow": true, "is_allow_file_upload": true},
        "shared_note_pad_features": {"is_allow": true},
        "whiteboard_features": {"is_allow": true},
        "external_media_player_features": {"is_allow": true},
        "waiting_room_features": {"is_active": false},
        "breakout_room_features": {"is_allow": true, "allowed_number_rooms": 6},
        "display_external_link_features": {"is_allow": true},
        "ingress_features": {"is_allow": true},
        "end_to_end_encryption_features": {"is_enabled": false},
        "polls_features": {"is_allow": true},
        "insights_features": {
            "is_allow": true,
            "transcription_features": {"is_allow": true},
            "chat_translation_features": {"is_allow": true},
            "ai_features": {
                "is_allow": true,
                "ai_text_chat_features": {"is_allow": true},
                "meeting_summarization_features": {"is_allow": true}
            }
        },
        "sip_dial_in_features": {"is_allow": true},
        "external_broadcasting_features": {"is_allow": true, "is_allow_rtmp": true}
    })
}

/// The rules that tie features to each other, to the server's configuration, and to E2EE.
pub(super) fn apply_feature_rules(f: &mut RoomCreateFeatures, policy: &RoomPolicy) {
    let rec = f.recording_features.get_or_insert_with(Default::default);
    if !rec.is_allow {
        rec.is_allow_cloud = false;
        rec.is_allow_local = false;
        rec.enable_auto_cloud_recording = false;
    }
    let chat = f.chat_features.get_or_insert_with(Default::default);
    if !chat.is_allow {
        chat.is_allow_file_upload = false;
    }
    if chat.is_allow_file_upload {
        if chat.allowed_file_types.is_empty() {
            chat.allowed_file_types = policy.allowed_file_types.clone();
        }
        chat.max_file_size = Some(policy.upload_max_size_mb);
    }
    let wb = f.whiteboard_features.get_or_insert_with(Default::default);
    if wb.is_allow {
        wb.max_allowed_file_size = Some(policy.whiteboard_max_size_mb);
    }
    let bk = f
        .breakout_room_features
        .get_or_insert_with(Default::default);
    if bk.is_allow && bk.allowed_number_rooms == 0 {
        bk.allowed_number_rooms = 6;
    }
    bk.allowed_number_rooms = bk.allowed_number_rooms.min(policy.max_num_breakout_rooms);
    let bc = f
        .external_broadcasting_features
        .get_or_insert_with(Default::default);
    if let Some(rtmp) = f.allow_rtmp {
        bc.is_allow = rtmp;
        bc.is_allow_rtmp = rtmp;
    }
    if !bc.is_allow {
        bc.is_allow_rtmp = false;
    }
    if !policy.insights_enabled {
        f.insights_features
            .get_or_insert_with(Default::default)
            .is_allow = false;
    }
    if !policy.sip_enabled {
        f.sip_dial_in_features
            .get_or_insert_with(Default::default)
            .is_allow = false;
    }
    for_each_default_submessage(f);

    let e2ee = f
        .end_to_end_encryption_features
        .get_or_insert_with(Default::default);
    if e2ee.is_enabled {
        forbid_server_side_media(f);
    } else {
        e2ee.enabled_self_insert_encryption_key = false;
        e2ee.included_chat_messages = false;
        e2ee.included_whiteboard = false;
    }
    cascade_insights(f);
}

/// Makes every sub-message present so that clients never meet a `null` feature.
fn for_each_default_submessage(f: &mut RoomCreateFeatures) {
    f.shared_note_pad_features
        .get_or_insert_with(Default::default);
    f.external_media_player_features
        .get_or_insert_with(Default::default);
    f.waiting_room_features.get_or_insert_with(Default::default);
    f.display_external_link_features
        .get_or_insert_with(Default::default);
    f.ingress_features.get_or_insert_with(Default::default);
    f.polls_features.get_or_insert_with(Default::default);
    f.sip_dial_in_features.get_or_insert_with(Default::default);
    let i = f.insights_features.get_or_insert_with(Default::default);
    i.transcription_features
        .get_or_insert_with(Default::default);
    i.chat_translation_features
        .get_or_insert_with(Default::default);
    let ai = i.ai_features.get_or_insert_with(Default::default);
    ai.ai_text_chat_features
        .get_or_insert_with(Default::default);
    ai.meeting_summarization_features
        .get_or_insert_with(Default::default);
}

/// In an E2EE room, whichever key model, the server cannot see the media, so every feature that
/// would need it is switched off: cloud recording (and auto recording), RTMP and external
/// broadcasting, every insights service (transcription, speech translation and synthesis,
/// meeting summarization, and the text services that would receive chat in clear), SIP dial-in
/// and ingress. Local recording stays: it happens in the participant's own browser.
/// The server also refuses these at every endpoint that would start them.
pub fn forbid_server_side_media(f: &mut RoomCreateFeatures) {
    let rec = f.recording_features.get_or_insert_with(Default::default);
    rec.is_allow_cloud = false;
    rec.enable_auto_cloud_recording = false;
    let bc = f
        .external_broadcasting_features
        .get_or_insert_with(Default::default);
    bc.is_allow = false;
    bc.is_allow_rtmp = false;
    f.allow_rtmp = f.allow_rtmp.map(|_| false);
    f.insights_features
        .get_or_insert_with(Default::default)
        .is_allow = false;
    f.sip_dial_in_features
        .get_or_insert_with(Default::default)
        .is_allow = false;
    f.ingress_features
        .get_or_insert_with(Default::default)
        .is_allow = false;
}

fn cascade_insights(f: &mut RoomCreateFeatures) {
    let i = f.insights_features.get_or_insert_with(Default::default);
    let all = i.is_allow;
    let t = i
        .transcription_features
        .get_or_insert_with(Default::default);
    if !all {
        t.is_allow = false;
    }
    if !t.is_allow {
        t.is_allow_translation = false;
        t.is_allow_speech_synthesis = false;
    }
    if !all {
        i.chat_translation_features
            .get_or_insert_with(Default::default)
            .is_allow = false;
    }
    let ai = i.ai_features.get_or_insert_with(Default::default);
    if !all {
        ai.is_allow = false;
    }
    if !ai.is_allow {
        ai.ai_text_chat_features
            .get_or_insert_with(Default::default)
            .is_allow = false;
        ai.meeting_summarization_features
            .get_or_insert_with(Default::default)
            .is_allow = false;
    }
}
