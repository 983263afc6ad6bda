//! One JSON object per log line.

pub fn line(event: &str, fields: &[(&str, &str)]) -> String {
    let mut m = serde_json::Map::new();
    m.insert("event".into(), event.into());
    for (k, v) in fields {
        m.insert((*k).into(), (*v).into());
    }
    serde_json::Value::Object(m).to_string()
}
