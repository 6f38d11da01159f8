//! What every JSON report and CSV file says about itself: the date (UTC), the adapter and driver.

use serde_json::{Value, json};

/// Now, UTC, as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn now_utc() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    utc(secs)
}

/// `secs` since the Unix epoch as `YYYY-MM-DDTHH:MM:SSZ` (the proleptic Gregorian calendar).
pub fn utc(secs: u64) -> String {
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's days-to-civil.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// An adapter as JSON: name, backend, device type, driver and its version.
pub fn adapter(info: &wgpu::AdapterInfo) -> Value {
    json!({
        "name": info.name,
        "backend": format!("{:?}", info.backend).to_lowercase(),
        "device_type": format!("{:?}", info.device_type),
        "driver": info.driver,
        "driver_info": info.driver_info,
        "vendor": info.vendor,
        "device": info.device,
    })
}

/// What a report (JSON or CSV) says about itself: `date` (UTC), `adapter` (the device's description:
/// a GPU adapter's, or the CPU layer's), `adapter_info` (a GPU adapter's name, backend, driver ...,
/// or the CPU layer's [`crate::cpu_layer::info`]), `shape`, `options` and `checked` (every output
/// compared with the oracle and within tolerance).
pub fn report_on(
    described: String,
    info: Value,
    shape: Value,
    options: Value,
    checked: bool,
) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert("date".into(), json!(now_utc()));
    m.insert("adapter".into(), json!(described));
    m.insert("adapter_info".into(), info);
    m.insert("shape".into(), shape);
    m.insert("options".into(), options);
    m.insert("checked".into(), json!(checked));
    m
}

/// The same lines as `# key: value` CSV comments, from a JSON object of metadata.
pub fn csv_comments(meta: &serde_json::Map<String, Value>) -> String {
    let mut s = String::new();
    for (k, v) in meta {
        let v = match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        s += &format!("# {k}: {}\n", v.replace('\n', " "));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_dates() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc(1_796_659_199), "2026-12-07T15:59:59Z");
    }

    #[test]
    fn csv_comments_quote_nothing() {
        let meta = json!({"date": "2026-12-07T00:00:00Z", "checked": true});
        let text = csv_comments(meta.as_object().unwrap());
        assert_eq!(text, "# checked: true\n# date: 2026-12-07T00:00:00Z\n");
    }
}
