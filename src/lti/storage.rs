//! LTI Platform Storage (1EdTech "LTI OIDC Login with LTI Client Side
//! postMessages" and "LTI Platform Storage"): launches in browsers that
//! keep no cookie in the LMS's frame.
//!
//! When the login initiation names an `lti_storage_target` (or arrives in a
//! frame), the tool answers with a small page instead of a redirect. Its
//! script asks the platform's frame for `lti.capabilities`; when
//! `lti.put_data` / `lti.get_data` are offered (or their older
//! `org.imsglobal.lti.*` names), it stores the state (holding the signed
//! flow, the same token the flow cookie carries) and the nonce there, then
//! goes to the platform's authorize URL. Without storage it checks that the
//! flow cookie came back (`/_hubgate/lti/flow_check`); without either it
//! offers to open the launch in a new window, where cookies are first-party.
//!
//! A launch that carries `lti_storage_target` gets the check page: it reads
//! the state back from the platform's storage and posts the launch again,
//! same-origin, with the signed flow (`hubgate_flow`), or without it when
//! the storage has none (then the cookie decides). The server verifies that
//! token as it verifies the cookie, and when the browser sent the cookie as
//! well, both must agree; the storage only carries it. Messages go to, and
//! are accepted only from, the origin of the platform's authorize URL.

use super::LtiError;
use crate::framing::frame_ancestors_directive;
use crate::http::{Headers, Response};
use crate::pages::escape;
use base64::Engine;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// The form field the check page posts the signed flow in.
pub const FLOW_FIELD: &str = "hubgate_flow";
const NAME_MAX: usize = 64;

/// Where the platform's storage listens: `_parent` or a frame name in the
/// LMS page (Canvas: `post_message_forwarding`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct StorageTarget(String);

impl StorageTarget {
    /// A frame name goes into script as data, never as code; it is still
    /// held to what platforms use, so a hostile value is refused loudly.
    pub fn parse(v: &str) -> Result<StorageTarget, LtiError> {
        let ok = !v.is_empty()
            && v.len() <= NAME_MAX
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if ok {
            Ok(StorageTarget(v.to_string()))
        } else {
            Err(LtiError::BadStorageTarget)
        }
    }
}

pub fn state_key(state: &str) -> String {
    format!("hubgate_state_{state}")
}

pub fn nonce_key(nonce: &str) -> String {
    format!("hubgate_nonce_{nonce}")
}

/// The second leg of a storage launch comes from the check page itself:
/// a same-origin form post. A cross-site page cannot send it (its `Origin`
/// is its own); see the README on user servers sharing the hub's origin.
pub fn is_same_origin_post(headers: &Headers, origin: &str) -> bool {
    let site_ok = headers
        .get("sec-fetch-site")
        .is_none_or(|s| s.eq_ignore_ascii_case("same-origin"));
    site_ok && headers.get("origin") == Some(origin)
}

/// What the initiation page needs.
#[derive(Serialize)]
pub struct InitiationPage<'a> {
    pub target: Option<&'a StorageTarget>,
    pub platform_origin: &'a str,
    pub authorize: &'a str,
    pub state_key: String,
    pub state_value: &'a str,
    pub nonce_key: String,
    pub nonce: &'a str,
    pub flow_check: String,
    pub new_window: &'a str,
    /// Canvas's `requestFullWindowLaunch` opens this URL itself.
    pub target_link_uri: &'a str,
    #[serde(skip)]
    pub frame_ancestors: &'a [String],
}

/// What the launch's check page needs.
#[derive(Serialize)]
pub struct CheckPage<'a> {
    pub target: &'a StorageTarget,
    pub platform_origin: &'a str,
    pub state_key: String,
    pub nonce_key: Option<String>,
    pub nonce: Option<&'a str>,
    pub action: &'a str,
    pub id_token: &'a str,
    pub state: &'a str,
    #[serde(skip)]
    pub frame_ancestors: &'a [String],
}

/// The messaging both pages share: find the storage frame, ask it, accept
/// answers from the platform's origin only.
const MESSAGING: &str = r#"var c=JSON.parse(document.getElementById('hubgate-lti').textContent);
function say(id){var e=document.getElementById(id);if(e)e.hidden=false;var w=document.getElementById('working');if(w)w.hidden=true;}
function frameOf(name){try{if(!name||name==='_parent')return window.parent===window?null:window.parent;return window.parent.frames[name]||null;}catch(e){return null;}}
var seq=0;
function ask(w,subject,fields,ms){return new Promise(function(done){
var id='hubgate-'+(++seq)+'-'+Date.now();var t;
function on(ev){var d=ev.data;if(typeof d==='string'){try{d=JSON.parse(d);}catch(e){return;}}
if(ev.origin!==c.platform_origin||!d||d.message_id!==id||d.subject!==subject+'.response')return;
window.removeEventListener('message',on);clearTimeout(t);done(d.error?null:d);}
window.addEventListener('message',on);
t=setTimeout(function(){window.removeEventListener('message',on);done(null);},ms);
var m={subject:subject,message_id:id};for(var k in fields)m[k]=fields[k];
try{w.postMessage(m,c.platform_origin);}catch(e){clearTimeout(t);window.removeEventListener('message',on);done(null);}});}
function storage(){var w=frameOf(c.target);if(!c.target||!w)return Promise.resolve(null);
function probe(p){return ask(w,p+'capabilities',{},800).then(function(r){
if(!r||!Array.isArray(r.supported_messages))return null;
var put=null,get=null;r.supported_messages.forEach(function(m){if(m&&m.subject===p+'put_data')put=m;if(m&&m.subject===p+'get_data')get=m;});
if(!put||!get)return null;var f=frameOf(put.frame||c.target);return f?{w:f,p:p,all:r.supported_messages}:null;});}
return probe('lti.').then(function(s){return s||probe('org.imsglobal.lti.');});}
"#;

const INITIATE: &str = r#"function go(){window.location.replace(c.authorize);}
function newWindow(caps){var full=caps&&caps.all.some(function(m){return m&&m.subject==='requestFullWindowLaunch';});
var b=document.getElementById('platform-window');
if(full&&b){b.hidden=false;b.addEventListener('click',function(){caps.w.postMessage({subject:'requestFullWindowLaunch',data:{url:c.target_link_uri,launchType:'new_window'}},c.platform_origin);});}
say('new-window');}
function cookie(caps){return fetch(c.flow_check,{credentials:'same-origin',cache:'no-store'}).then(function(r){if(r.status===204)go();else newWindow(caps);},function(){newWindow(caps);});}
storage().then(function(s){if(!s)return cookie(null);
return Promise.all([ask(s.w,s.p+'put_data',{key:c.state_key,value:c.state_value},2000),ask(s.w,s.p+'put_data',{key:c.nonce_key,value:c.nonce},2000)])
.then(function(r){if(r[0]&&r[1])go();else cookie(s);});});
"#;

const CHECK: &str = r#"var f=document.getElementById('launch');
function post(flow){if(flow){var i=document.createElement('input');i.type='hidden';i.name='hubgate_flow';i.value=flow;f.appendChild(i);}f.submit();}
storage().then(function(s){if(!s)return post(null);
var gets=[ask(s.w,s.p+'get_data',{key:c.state_key},2000)];if(c.nonce_key)gets.push(ask(s.w,s.p+'get_data',{key:c.nonce_key},2000));
return Promise.all(gets).then(function(r){
var ok=r[0]&&typeof r[0].value==='string'&&(!c.nonce_key||(r[1]&&r[1].value===c.nonce));post(ok?r[0].value:null);});});
"#;

/// Page data as JSON inside a non-executed script element: `<`, `>` and `&`
/// escaped so nothing in it can close the element.
fn data_block<T: Serialize>(data: &T) -> String {
    let json = serde_json::to_string(data).unwrap_or_else(|_| "{}".into());
    let json = json
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026");
    format!("<script type=\"application/json\" id=\"hubgate-lti\">{json}</script>")
}

fn script_page(
    title: &str,
    body: &str,
    data: String,
    script: String,
    frame_ancestors: &[String],
    connect: bool,
) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
<title>{t}</title><style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;color:#222}}\
a.button,button{{display:inline-block;padding:.6rem 1.2rem;background:#b34700;color:#fff;border:0;border-radius:4px;text-decoration:none;font-size:1rem}}\
a.button:focus,button:focus{{outline:3px solid #222;outline-offset:2px}}</style></head><body>{body}{data}<script>{script}</script></body></html>",
        t = escape(title)
    );
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(script.as_bytes()));
    let mut r = Response::html(200, html);
    r.headers.set(
        "Content-Security-Policy",
        format!(
            "default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{hash}'; connect-src {}; form-action 'self'; base-uri 'none'; {}",
            if connect { "'self'" } else { "'none'" },
            frame_ancestors_directive(frame_ancestors)
        ),
    );
    // Not `no-referrer`: that makes the check page's own post send
    // `Origin: null`, and the launch needs its origin.
    r.headers.set("Referrer-Policy", "same-origin");
    r
}

/// The login initiation's page (see the module comment).
pub fn initiation_page(p: &InitiationPage<'_>) -> Response {
    let body = format!(
        "<main><h1>Opening the tool…</h1>\
<p id=\"working\" role=\"status\">Connecting to your course.</p>\
<div id=\"new-window\" hidden><p>Your browser keeps this tool from signing you in inside the course page.</p>\
<p><a class=\"button\" href=\"{nw}\" target=\"_blank\" rel=\"noopener\">Open in a new window</a></p>\
<p><button id=\"platform-window\" type=\"button\" hidden>Let the course open it in a new window</button></p></div>\
<noscript><p><a class=\"button\" href=\"{authorize}\">Continue</a></p></noscript></main>",
        nw = escape(p.new_window),
        authorize = escape(p.authorize),
    );
    script_page(
        "Opening the tool",
        &body,
        data_block(p),
        format!("{MESSAGING}{INITIATE}"),
        p.frame_ancestors,
        true,
    )
}

/// The launch's check page (see the module comment).
pub fn check_page(p: &CheckPage<'_>) -> Response {
    let body = format!(
        "<main><h1>Opening the tool…</h1>\
<p id=\"working\" role=\"status\">Checking this launch with your course.</p>\
<form id=\"launch\" method=\"post\" action=\"{action}\">\
<input type=\"hidden\" name=\"id_token\" value=\"{id_token}\"><input type=\"hidden\" name=\"state\" value=\"{state}\">\
<noscript><button type=\"submit\">Continue</button></noscript></form></main>",
        action = escape(p.action),
        id_token = escape(p.id_token),
        state = escape(p.state),
    );
    script_page(
        "Opening the tool",
        &body,
        data_block(p),
        format!("{MESSAGING}{CHECK}"),
        p.frame_ancestors,
        false,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_targets_are_frame_names_only() {
        for ok in ["_parent", "post_message_forwarding", "lti-storage.1"] {
            assert!(StorageTarget::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "x\"",
            "javascript:alert(1)",
            "a b",
            "</script>",
            &"a".repeat(65),
        ] {
            assert_eq!(
                StorageTarget::parse(bad),
                Err(LtiError::BadStorageTarget),
                "{bad}"
            );
        }
    }

    #[test]
    fn page_data_cannot_close_its_script_element() {
        let block = data_block(&serde_json::json!({"x": "</script><script>alert(1)</script>&"}));
        assert!(!block[..block.len() - "</script>".len()].contains("</script"));
        assert!(block.contains("\\u003c/script\\u003e"));
    }

    #[test]
    fn a_post_is_same_origin_only_with_the_tools_origin() {
        let h = |pairs: &[(&str, &str)]| {
            Headers(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
        };
        let me = "https://hub.example.org";
        assert!(is_same_origin_post(&h(&[("Origin", me)]), me));
        assert!(is_same_origin_post(
            &h(&[("Origin", me), ("Sec-Fetch-Site", "same-origin")]),
            me
        ));
        assert!(!is_same_origin_post(&h(&[]), me));
        assert!(!is_same_origin_post(&h(&[("Origin", "null")]), me));
        assert!(!is_same_origin_post(
            &h(&[("Origin", "https://lms.example.edu")]),
            me
        ));
        assert!(!is_same_origin_post(
            &h(&[("Origin", me), ("Sec-Fetch-Site", "cross-site")]),
            me
        ));
    }
}
