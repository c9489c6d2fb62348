//! The pages, as plain server-rendered HTML (no JavaScript needed; a few
//! inline lines make the counter button update without a reload).

use sessions::Timestamp;

/// Escapes text for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole page around `body`.
pub fn page(title: &str, body: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} · sessions demo</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font: 16px/1.5 system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem; color: #222; }}
h1 {{ font-size: 1.5rem; }} table {{ border-collapse: collapse; width: 100%; }}
td, th {{ text-align: left; padding: .3rem .5rem; border-bottom: 1px solid #ddd; }}
form.inline {{ display: inline; }} .note {{ color: #666; font-size: .9rem; }}
.error {{ color: #a00; }} input {{ margin: .2rem 0; }}
</style></head>
<body><h1>{title}</h1>
{body}
</body></html>"#,
        title = escape(title)
    )
}

/// The login form, with the session's CSRF token.
pub fn login_form(csrf: &str, error: Option<&str>) -> String {
    let error = error.map_or(String::new(), |e| {
        format!(r#"<p class="error" id="error">{}</p>"#, escape(e))
    });
    format!(
        r#"{error}<form method="post" action="/login" id="login">
<input type="hidden" name="csrf" value="{csrf}">
<label>User <input name="username" id="username" autocomplete="username"></label><br>
<label>Password <input name="password" id="password" type="password" autocomplete="current-password"></label><br>
<button type="submit" id="submit">Log in</button>
</form>
<p class="note">Demo users: <code>alice</code> and <code>bob</code>, password <code>demo</code>.</p>"#,
        csrf = escape(csrf)
    )
}

/// The home page of a logged-in user.
pub fn home(user: &str, counter: u64, csrf: &str, expires_at: Timestamp) -> String {
    format!(
        r#"<p>Logged in as <strong id="user">{user}</strong>.</p>
<p>Visits in this session: <strong id="counter">{counter}</strong>
<button type="button" id="increment">+1</button> <span class="note">(reload the page, or press the button)</span></p>
<p class="note">This session ends at {expires} unless you come back before.</p>
<p><a href="/devices">Your devices</a> · <a href="/api/session">/api/session</a></p>
<form method="post" action="/logout" class="inline"><input type="hidden" name="csrf" value="{csrf}"><button type="submit" id="logout">Log out</button></form>
<script>
document.getElementById("increment").addEventListener("click", async () => {{
  const r = await fetch("/api/counter", {{ method: "POST", headers: {{ "x-csrf-token": "{csrf}" }} }});
  if (r.ok) document.getElementById("counter").textContent = (await r.json()).counter;
}});
</script>"#,
        user = escape(user),
        csrf = escape(csrf),
        expires = utc(expires_at),
    )
}

/// One row of the devices page.
pub struct DeviceRow {
    /// The session's store key, in hex.
    pub key: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it ends unless renewed.
    pub expires_at: Timestamp,
    /// Whether it is the current request's session.
    pub current: bool,
}

/// The "your devices" page.
pub fn devices(user: &str, rows: &[DeviceRow], csrf: &str) -> String {
    let mut table =
        String::from("<table id=\"devices\"><tr><th>Session</th><th>Created</th><th>Expires</th><th></th></tr>\n");
    for row in rows {
        let short = &row.key[..row.key.len().min(12)];
        let action = format!(
            r#"<form method="post" action="/devices/end" class="inline"><input type="hidden" name="csrf" value="{csrf}"><input type="hidden" name="key" value="{key}"><button type="submit" class="end" data-current="{current}">{label}</button></form>"#,
            csrf = escape(csrf),
            key = escape(&row.key),
            current = row.current,
            label = if row.current { "End (log out)" } else { "End" },
        );
        table.push_str(&format!(
            "<tr class=\"device\" data-key=\"{key}\"><td><code>{short}</code>{this}</td><td>{created}</td><td>{expires}</td><td>{action}</td></tr>\n",
            key = escape(&row.key),
            short = escape(short),
            this = if row.current { " <strong class=\"this\">this device</strong>" } else { "" },
            created = utc(row.created_at),
            expires = utc(row.expires_at),
        ));
    }
    table.push_str("</table>");
    format!(
        r#"<p>Sessions of <strong>{user}</strong>, oldest first. Each is named by a hash of its token: safe to show, useless to steal.</p>
{table}
<p><form method="post" action="/devices/end-others"><input type="hidden" name="csrf" value="{csrf}"><button type="submit" id="end-others">Log out everywhere else</button></form></p>
<p><a href="/">Back</a></p>"#,
        user = escape(user),
        csrf = escape(csrf),
    )
}

/// A timestamp as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn utc(t: Timestamp) -> String {
    let secs = t.as_millis().div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formats_known_instants() {
        assert_eq!(utc(Timestamp::from_millis(0)), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(Timestamp::from_millis(951_782_400_000)), "2000-02-29 00:00:00 UTC");
        assert_eq!(
            utc(Timestamp::from_millis(1_796_083_199_000)),
            "2026-11-30 23:59:59 UTC"
        );
    }

    #[test]
    fn escape_covers_markup() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
