//! An app's backups, opened: the files of one of its snapshots folder by folder (loaded into
//! the app's Backups card with htmx, or as a page of its own), and one file downloaded from
//! it, streamed from the app's device as restic reads it (`deploy::browsing`).
//!
//! Basic mode names what a backup holds in words ("Your files", "Database"); Advanced mode
//! shows restic's paths and each entry's permissions. Times are in the box's time zone, like
//! the rest of the Backups views.

use askama::Template;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use super::backups::{advanced, app_name, clock, parse_rfc3339, snapshot_time, zone_name};
use super::{Section, page};
use crate::deploy::{EntryKind, Folder};
use crate::units::human_bytes;
use crate::web::AppState;
use crate::web::context::{Ctx, Wants};
use crate::web::error::WebError;
use crate::web::paths::{file_href, files_href};

/// Longest file name offered to the browser (the rest is cut, its extension kept).
const MAX_FILE_NAME: usize = 120;

/// `?path=` of the browsing routes (the top of the backup when missing).
#[derive(Deserialize)]
pub struct PathQuery {
    #[serde(default)]
    path: Option<String>,
}

/// What a backup holds at its top, in the owner's words: the app's volumes by the key its
/// recipe gives them (`/data/<key>`) and its database's dump (`/database`).
struct Words {
    /// The recipe's volume keys.
    keys: Vec<String>,
}

impl Words {
    /// The owner's name for a folder at the top of the backup (None: it has none).
    fn of(&self, path: &str) -> Option<String> {
        if path == "/database" {
            return Some("Database".into());
        }
        if path == "/data" {
            return Some("All your files".into());
        }
        let key = path.strip_prefix("/data/").filter(|k| !k.contains('/'))?;
        if self.keys.len() <= 1 {
            return Some("Your files".into());
        }
        // The keys of one app share a prefix (`paperless-data`, `paperless-media`): the rest
        // tells them apart.
        let common = common_prefix(&self.keys);
        let rest = key
            .strip_prefix(common)
            .filter(|r| !r.is_empty())
            .unwrap_or(key);
        let words = match rest {
            "db" => "database files".to_string(),
            "conf" | "config" => "settings".to_string(),
            other => other.replace(['-', '_'], " "),
        };
        Some(format!("Your files: {words}"))
    }
}

/// The longest prefix all keys share, up to and including a `-` or `_`.
fn common_prefix(keys: &[String]) -> &str {
    let Some(first) = keys.first() else {
        return "";
    };
    let mut len = first.len();
    for k in &keys[1..] {
        len = len.min(
            first
                .bytes()
                .zip(k.bytes())
                .take_while(|(a, b)| a == b)
                .count(),
        );
    }
    match first[..len].rfind(['-', '_']) {
        Some(i) => &first[..=i],
        None => "",
    }
}

struct EntryView {
    /// What the owner reads (words for the top folders in Basic mode).
    name: String,
    path: String,
    /// folder | file | link | other
    kind: &'static str,
    /// Files: "2.9 MB" (exact bytes in `bytes`); empty for the others.
    size: String,
    bytes: u64,
    changed: String,
    changed_iso: String,
    mode: String,
    /// Opens the folder, or downloads the file.
    href: String,
}

struct Crumb {
    label: String,
    href: String,
}

#[derive(Template)]
#[template(path = "partials/snapshot_files.html")]
struct FilesPart {
    app: String,
    advanced: bool,
    /// "14 January 2026 at 22:04"
    date: String,
    destination: String,
    short_id: String,
    zone: String,
    /// The folder as the owner reads it, and as restic names it.
    title: String,
    path: String,
    crumbs: Vec<Crumb>,
    entries: Vec<EntryView>,
    cut_short: bool,
    /// How many are shown (all of them unless `cut_short`).
    shown: usize,
}

#[derive(Template)]
#[template(path = "pages/snapshot_files.html")]
struct FilesPage {
    slug: String,
    app: String,
    files: String,
}

/// A folder of one of the app's snapshots: its entries, folders first, each folder opening
/// in place and each file with "Download".
pub async fn files(
    State(state): State<AppState>,
    ctx: Ctx,
    Path((slug, dest, snapshot)): Path<(String, i64, String)>,
    Query(q): Query<PathQuery>,
) -> Result<Response, WebError> {
    let stored = state
        .store
        .app(slug.clone())
        .await?
        .ok_or_else(WebError::not_found)?;
    let app = app_name(&state, &slug, &stored.name);
    let advanced = advanced(&ctx)?;
    let path = q.path.unwrap_or_else(|| "/".into());
    let folder = state
        .deployer
        .snapshot_folder(&slug, dest, &snapshot, &path)
        .await?;
    let words = Words {
        keys: state
            .catalog
            .recipes
            .get(&slug)
            .map(|r| r.manifest.data_volumes.clone())
            .unwrap_or_default(),
    };
    let html = render(&slug, &app, advanced, &words, folder)?;
    if ctx.wants == Wants::Partial {
        return Ok(Html(html).into_response());
    }
    let html = FilesPage {
        slug,
        app: app.clone(),
        files: html,
    }
    .render()?;
    page(&ctx, Section::Apps, &format!("{app}'s backup"), html)
}

fn render(
    slug: &str,
    app: &str,
    advanced: bool,
    words: &Words,
    folder: Folder,
) -> Result<String, WebError> {
    let (dest, snapshot) = (folder.destination_id, folder.snapshot.as_str());
    let top = folder.path == "/";
    let entries = folder
        .entries
        .iter()
        .map(|e| {
            let name = match words.of(&e.path) {
                Some(w) if top && !advanced => w,
                _ if top => e.path.clone(),
                _ => e.name.clone(),
            };
            let (changed, changed_iso) = match parse_rfc3339(&e.mtime) {
                Some(t) => (
                    clock(t.unix_timestamp()),
                    super::format_iso(t.unix_timestamp()),
                ),
                None => (String::new(), String::new()),
            };
            let (kind, href) = match e.kind {
                EntryKind::Dir => ("folder", files_href(slug, dest, snapshot, &e.path)),
                EntryKind::File => ("file", file_href(slug, dest, snapshot, &e.path)),
                EntryKind::Symlink => ("link", String::new()),
                EntryKind::Other => ("other", String::new()),
            };
            EntryView {
                name,
                path: e.path.clone(),
                kind,
                size: if e.kind == EntryKind::File {
                    human_bytes(e.size)
                } else {
                    String::new()
                },
                bytes: e.size,
                changed,
                changed_iso,
                mode: e.mode.clone(),
                href,
            }
        })
        .collect();
    let crumbs = crumbs(slug, dest, snapshot, &folder.path, advanced, words);
    let title = crumbs.last().map(|c| c.label.clone()).unwrap_or_default();
    Ok(FilesPart {
        app: app.to_string(),
        advanced,
        date: snapshot_time(&folder.time).0,
        destination: folder.destination.clone(),
        short_id: folder.short_id.clone(),
        zone: zone_name(),
        title,
        path: folder.path.clone(),
        crumbs,
        entries,
        cut_short: folder.cut_short,
        shown: folder.entries.len(),
    }
    .render()?)
}

/// The way from the top of the backup to `path`, each step opening its folder. Basic mode
/// names the top folders in words (a volume's folder is one step, not `data` then its key);
/// Advanced mode shows each part of restic's path.
fn crumbs(
    slug: &str,
    dest: i64,
    snapshot: &str,
    path: &str,
    advanced: bool,
    words: &Words,
) -> Vec<Crumb> {
    let mut out = vec![Crumb {
        label: if advanced {
            "/".into()
        } else {
            "Everything".into()
        },
        href: files_href(slug, dest, snapshot, "/"),
    }];
    let mut at = String::new();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        at.push('/');
        at.push_str(part);
        let label = if advanced {
            part.to_string()
        } else {
            match words.of(&at) {
                // `/data` is a step only when it is where the owner is.
                Some(_) if at == "/data" && path != "/data" => continue,
                Some(w) => w,
                None => part.to_string(),
            }
        };
        out.push(Crumb {
            label,
            href: files_href(slug, dest, snapshot, &at),
        });
    }
    out
}

/// A file of one of the app's snapshots, streamed as restic reads it on the app's device;
/// the browser saves it. Nothing of it is kept on the box.
pub async fn download(
    State(state): State<AppState>,
    Path((slug, dest, snapshot)): Path<(String, i64, String)>,
    Query(q): Query<PathQuery>,
) -> Result<Response, WebError> {
    let path = q.path.unwrap_or_default();
    let file = state
        .deployer
        .snapshot_file(&slug, dest, &snapshot, &path)
        .await?;
    let disposition = format!("attachment; filename=\"{}\"", safe_file_name(&file.name));
    let mut res = Body::from_stream(file.body).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&disposition).map_err(WebError::internal)?,
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(file.size));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

/// A file name safe inside a quoted header value and on any file system: letters, digits
/// and `.-_+()` and spaces kept, anything else `_`; no leading dot (a hidden file), at most
/// `MAX_FILE_NAME` characters with the extension kept.
pub fn safe_file_name(name: &str) -> String {
    let mut safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '+' | '(' | ')' | ' ') {
                c
            } else {
                '_'
            }
        })
        .collect();
    safe = safe.trim().trim_start_matches('.').to_string();
    if safe.len() > MAX_FILE_NAME {
        let ext = safe
            .rfind('.')
            .map(|i| safe[i..].to_string())
            .filter(|e| e.len() <= 16)
            .unwrap_or_default();
        safe.truncate(MAX_FILE_NAME - ext.len());
        safe.push_str(&ext);
    }
    if safe.trim_matches(['_', '.', ' ']).is_empty() {
        return "file-from-backup".into();
    }
    safe
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_safe_for_the_header_and_the_disk() {
        assert_eq!(safe_file_name("big"), "big");
        assert_eq!(safe_file_name("photo (1).jpg"), "photo (1).jpg");
        assert_eq!(safe_file_name("a\"b\r\nc;d.txt"), "a_b__c_d.txt");
        assert_eq!(safe_file_name("Grüße.txt"), "Gr__e.txt");
        assert_eq!(safe_file_name(".env"), "env");
        assert_eq!(safe_file_name("\"\""), "file-from-backup");
        let long = format!("{}.tar.gz", "x".repeat(300));
        let cut = safe_file_name(&long);
        assert_eq!(cut.len(), MAX_FILE_NAME);
        assert!(cut.ends_with(".gz"), "{cut}");
    }

    #[test]
    fn a_backups_top_is_named_in_words() {
        let one = Words {
            keys: vec!["vaultwarden-data".into()],
        };
        assert_eq!(one.of("/data/vaultwarden-data").unwrap(), "Your files");
        assert_eq!(one.of("/database").unwrap(), "Database");
        assert_eq!(one.of("/data/vaultwarden-data/x"), None);
        let many = Words {
            keys: vec![
                "paperless-data".into(),
                "paperless-media".into(),
                "paperless-db".into(),
            ],
        };
        assert_eq!(
            many.of("/data/paperless-media").unwrap(),
            "Your files: media"
        );
        assert_eq!(
            many.of("/data/paperless-db").unwrap(),
            "Your files: database files"
        );
        assert_eq!(
            common_prefix(&["npm-data".into(), "npm-letsencrypt".into()]),
            "npm-"
        );
        assert_eq!(common_prefix(&["abc".into(), "abd".into()]), "");
    }

    #[test]
    fn crumbs_lead_from_the_top() {
        let words = Words {
            keys: vec!["data".into()],
        };
        let labels = |advanced| {
            crumbs("app", 1, "0123abcd", "/data/data/a/b", advanced, &words)
                .into_iter()
                .map(|c| c.label)
                .collect::<Vec<_>>()
        };
        assert_eq!(labels(false), ["Everything", "Your files", "a", "b"]);
        assert_eq!(labels(true), ["/", "data", "data", "a", "b"]);
        let c = crumbs("app", 1, "0123abcd", "/data/data/a b", false, &words);
        assert_eq!(
            c.last().unwrap().href,
            "/apps/app/snapshots/1/0123abcd/files?path=%2Fdata%2Fdata%2Fa+b"
        );
    }
}
