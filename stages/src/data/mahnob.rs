//! MAHNOB-HCI's emotion-elicitation sessions: `session.xml` and finding sessions.
//!
//! The dataset's `Sessions/<session id>/` folders each hold one BioSemi BDF and a
//! `session.xml` whose root element `<session>` carries the felt ratings as
//! attributes (`feltArsl`, `feltVlnc`, `feltCtrl`, `feltPred` on 1–9, `feltEmo` a
//! category code), `isStim`, `mediaFile`, `cutLenSec` (clip length in seconds), and
//! a `<subject id="...">` child; `<track filename="...">` children name the
//! session's files. [`discover`] reads every folder, keeps the usable sessions and
//! counts the rest by reason (no stimulus, missing ratings, missing files ...).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::stage::{IoContext, StageError};

/// What to tell a user who has no MAHNOB data where the stage looked.
pub(crate) const DOWNLOAD_HINT: &str = "download the MAHNOB-HCI emotion-elicitation data \
(\"Sessions\": one folder per session holding its BioSemi .bdf file and session.xml) \
from https://mahnob-db.eu/hci-tagging/ (free for research after signing the EULA), \
unpack it and pass the `Sessions` folder as the `path` parameter, or run the \
`synthetic-mahnob` stage upstream";

/// The attributes of one `session.xml` that ingestion uses. Absent or unparsable
/// values are `None`; ratings outside 1–9 count as absent.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub(crate) struct SessionXml {
    pub session_id: Option<String>,
    pub subject: Option<u16>,
    pub is_stim: Option<bool>,
    pub experiment_type: Option<String>,
    pub felt_arousal: Option<f32>,
    pub felt_valence: Option<f32>,
    pub felt_control: Option<f32>,
    pub felt_prediction: Option<f32>,
    pub felt_emotion: Option<u16>,
    pub media_file: Option<String>,
    pub cut_len_s: Option<f64>,
    /// File names of the `<track>` children that end in `.bdf`.
    pub bdf_tracks: Vec<String>,
}

fn rating(v: Option<&str>) -> Option<f32> {
    v.and_then(|s| s.trim().parse::<f32>().ok())
        .filter(|r| (1.0..=9.0).contains(r))
}

/// Parse the text of a `session.xml`; `path` names it in errors.
pub(crate) fn parse_session_xml(path: &Path, text: &str) -> Result<SessionXml, StageError> {
    let doc = roxmltree::Document::parse(text)
        .map_err(|e| StageError::bad_file(path, format!("not well-formed XML: {e}")))?;
    let root = doc.root_element();
    if !root.has_tag_name("session") {
        return Err(StageError::bad_file(
            path,
            format!(
                "root element is <{}>, expected <session>",
                root.tag_name().name()
            ),
        ));
    }
    let attr = |name: &str| {
        root.attribute(name)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    let subject = root
        .children()
        .find(|n| n.has_tag_name("subject"))
        .and_then(|n| n.attribute("id"))
        .and_then(|id| id.trim().parse::<u16>().ok());
    let bdf_tracks = root
        .children()
        .filter(|n| n.has_tag_name("track"))
        .filter_map(|n| n.attribute("filename"))
        .map(str::trim)
        .filter(|f| f.to_ascii_lowercase().ends_with(".bdf"))
        .map(str::to_string)
        .collect();
    Ok(SessionXml {
        session_id: attr("sessionId").map(str::to_string),
        subject,
        is_stim: attr("isStim").and_then(|s| match s {
            "1" | "true" => Some(true),
            "0" | "false" => Some(false),
            _ => None,
        }),
        experiment_type: attr("experimentType").map(str::to_string),
        felt_arousal: rating(attr("feltArsl")),
        felt_valence: rating(attr("feltVlnc")),
        felt_control: rating(attr("feltCtrl")),
        felt_prediction: rating(attr("feltPred")),
        felt_emotion: attr("feltEmo").and_then(|s| s.parse().ok()),
        media_file: attr("mediaFile").map(str::to_string),
        cut_len_s: attr("cutLenSec")
            .and_then(|s| s.parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v > 0.0),
        bdf_tracks,
    })
}

/// A usable session: a stimulus, felt arousal and valence, a BDF file.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Session {
    /// The folder name.
    pub id: String,
    pub dir: PathBuf,
    pub bdf: PathBuf,
    pub xml_path: PathBuf,
    pub subject: u16,
    /// 1-based position among the subject's sessions (in session-id order).
    pub trial: u16,
    pub xml: SessionXml,
    pub arousal: f32,
    pub valence: f32,
    pub dominance: Option<f32>,
}

/// Sessions left out, by reason.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub(crate) struct Skipped {
    /// `isStim="0"`.
    pub no_stimulus: usize,
    /// `feltArsl` or `feltVlnc` absent or outside 1–9.
    pub missing_ratings: usize,
    /// No `session.xml`, or no (or more than one unnamed) `.bdf` file.
    pub missing_files: usize,
    /// No `<subject id=...>`.
    pub missing_subject: usize,
    /// `experimentType` other than "emotion elicitation" (e.g. implicit tagging).
    pub other_experiment: usize,
}

impl Skipped {
    #[cfg(test)]
    pub(crate) fn total(&self) -> usize {
        self.no_stimulus
            + self.missing_ratings
            + self.missing_files
            + self.missing_subject
            + self.other_experiment
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Reason {
    NoStimulus,
    MissingRatings,
    MissingFiles,
    MissingSubject,
    OtherExperiment,
}

impl Reason {
    fn describe(self) -> &'static str {
        match self {
            Reason::NoStimulus => "no stimulus (isStim=\"0\")",
            Reason::MissingRatings => "missing feltArsl/feltVlnc rating",
            Reason::MissingFiles => "missing session.xml or .bdf file",
            Reason::MissingSubject => "no <subject id>",
            Reason::OtherExperiment => "not an emotion-elicitation session",
        }
    }

    fn counter(self, s: &mut Skipped) -> &mut usize {
        match self {
            Reason::NoStimulus => &mut s.no_stimulus,
            Reason::MissingRatings => &mut s.missing_ratings,
            Reason::MissingFiles => &mut s.missing_files,
            Reason::MissingSubject => &mut s.missing_subject,
            Reason::OtherExperiment => &mut s.other_experiment,
        }
    }
}

/// The result of scanning a `Sessions` folder.
#[derive(Debug, Clone, Default)]
pub(crate) struct Discovery {
    /// Usable sessions, by subject then session id.
    pub sessions: Vec<Session>,
    pub skipped: Skipped,
    /// One line per skip reason: count and example folders.
    pub warnings: Vec<String>,
}

/// Sort key: numeric ids in numeric order, then any other names.
fn id_key(id: &str) -> (u64, String) {
    (id.parse::<u64>().unwrap_or(u64::MAX), id.to_string())
}

/// The `Sessions` folder to read: `path` itself, or `path/Sessions` if that exists.
pub(crate) fn sessions_root(path: &Path) -> PathBuf {
    let inner = path.join("Sessions");
    if inner.is_dir() {
        inner
    } else {
        path.to_path_buf()
    }
}

/// Scan `root` (a MAHNOB `Sessions` folder). A missing folder or one without any
/// session folder is an error that says what to download.
pub(crate) fn discover(root: &Path) -> Result<Discovery, StageError> {
    let root = sessions_root(root);
    if !root.is_dir() {
        return Err(StageError::Data(format!(
            "{}: no such folder; {DOWNLOAD_HINT}",
            root.display()
        )));
    }
    let mut dirs = Vec::new();
    for entry in std::fs::read_dir(&root).at(&root)? {
        let entry = entry.at(&root)?;
        if entry.file_type().at(&entry.path())?.is_dir() {
            dirs.push((
                entry.file_name().to_string_lossy().into_owned(),
                entry.path(),
            ));
        }
    }
    if dirs.is_empty() {
        return Err(StageError::Data(format!(
            "{}: no session folders found; {DOWNLOAD_HINT}",
            root.display()
        )));
    }
    dirs.sort_by_key(|(id, _)| id_key(id));
    let mut found = Vec::new();
    let mut skipped = Skipped::default();
    let mut examples: BTreeMap<Reason, Vec<String>> = BTreeMap::new();
    let mut skip = |reason: Reason, id: &str, skipped: &mut Skipped| {
        *reason.counter(skipped) += 1;
        examples.entry(reason).or_default().push(id.to_string());
    };
    for (id, dir) in dirs {
        let xml_path = dir.join("session.xml");
        if !xml_path.is_file() {
            skip(Reason::MissingFiles, &id, &mut skipped);
            continue;
        }
        let text = std::fs::read_to_string(&xml_path).at(&xml_path)?;
        let xml = parse_session_xml(&xml_path, &text)?;
        if let Some(t) = &xml.experiment_type {
            if !t.eq_ignore_ascii_case("emotion elicitation") {
                skip(Reason::OtherExperiment, &id, &mut skipped);
                continue;
            }
        }
        if xml.is_stim == Some(false) {
            skip(Reason::NoStimulus, &id, &mut skipped);
            continue;
        }
        let Some(subject) = xml.subject else {
            skip(Reason::MissingSubject, &id, &mut skipped);
            continue;
        };
        let (Some(arousal), Some(valence)) = (xml.felt_arousal, xml.felt_valence) else {
            skip(Reason::MissingRatings, &id, &mut skipped);
            continue;
        };
        let Some(bdf) = find_bdf(&dir, &xml)? else {
            skip(Reason::MissingFiles, &id, &mut skipped);
            continue;
        };
        found.push(Session {
            id,
            dir,
            bdf,
            xml_path,
            subject,
            trial: 0,
            dominance: xml.felt_control,
            xml,
            arousal,
            valence,
        });
    }
    // Stable sort keeps session-id order within a subject.
    found.sort_by_key(|s| s.subject);
    let mut last = None;
    let mut n = 0u16;
    for s in &mut found {
        if last != Some(s.subject) {
            last = Some(s.subject);
            n = 0;
        }
        n = n.checked_add(1).ok_or_else(|| {
            StageError::Data(format!(
                "subject {} has more than {} sessions",
                s.subject,
                u16::MAX
            ))
        })?;
        s.trial = n;
    }
    let warnings = examples
        .into_iter()
        .map(|(reason, ids)| {
            let shown: Vec<&str> = ids.iter().take(5).map(String::as_str).collect();
            let more = if ids.len() > 5 {
                format!(" and {} more", ids.len() - 5)
            } else {
                String::new()
            };
            format!(
                "skipped {} session(s): {}: {}{more}",
                ids.len(),
                reason.describe(),
                shown.join(", ")
            )
        })
        .collect();
    Ok(Discovery {
        sessions: found,
        skipped,
        warnings,
    })
}

/// The session's BDF: the `<track filename>` if it exists, else the folder's only
/// `.bdf` file.
fn find_bdf(dir: &Path, xml: &SessionXml) -> Result<Option<PathBuf>, StageError> {
    for name in &xml.bdf_tracks {
        // Only a plain file name inside the session folder.
        if Path::new(name).components().count() == 1 {
            let p = dir.join(name);
            if p.is_file() {
                return Ok(Some(p));
            }
        }
    }
    let mut bdfs = Vec::new();
    for entry in std::fs::read_dir(dir).at(dir)? {
        let p = entry.at(dir)?.path();
        if p.is_file() && p.extension().is_some_and(|e| e.eq_ignore_ascii_case("bdf")) {
            bdfs.push(p);
        }
    }
    Ok(if bdfs.len() == 1 { bdfs.pop() } else { None })
}

#[cfg(test)]
mod tests {
    use super::*;

    const REAL_LIKE: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<session cutNr="3" cutLenSec="34.9600" experimentType="emotion elicitation" isStim="1"
  feltEmo="4" feltArsl="6" feltVlnc="7" feltCtrl="5" feltPred="8" mediaFile="69.avi" sessionId="12">
  <subject id="2" />
  <track type="Video" filename="P2-Rec1-All-Data-New_Section_12.avi" />
  <track type="Physiological" filename="Part_2_S_Trial6_emotion.bdf" />
</session>"#;

    #[test]
    fn parses_the_attributes_ingestion_uses() {
        let x = parse_session_xml(Path::new("s.xml"), REAL_LIKE).unwrap();
        assert_eq!(x.subject, Some(2));
        assert_eq!(x.is_stim, Some(true));
        assert_eq!(x.felt_arousal, Some(6.0));
        assert_eq!(x.felt_valence, Some(7.0));
        assert_eq!(x.felt_control, Some(5.0));
        assert_eq!(x.felt_prediction, Some(8.0));
        assert_eq!(x.felt_emotion, Some(4));
        assert_eq!(x.media_file.as_deref(), Some("69.avi"));
        assert_eq!(x.cut_len_s, Some(34.96));
        assert_eq!(x.session_id.as_deref(), Some("12"));
        assert_eq!(
            x.bdf_tracks,
            vec!["Part_2_S_Trial6_emotion.bdf".to_string()]
        );
    }

    #[test]
    fn bad_xml_is_an_error_naming_the_file() {
        let e =
            parse_session_xml(Path::new("/d/7/session.xml"), "<session feltArsl='3'").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("/d/7/session.xml: not well-formed XML"),
            "{e}"
        );
        let e = parse_session_xml(Path::new("/d/7/session.xml"), "<other/>").unwrap_err();
        assert!(e.to_string().contains("expected <session>"), "{e}");
    }

    #[test]
    fn out_of_scale_ratings_count_as_missing() {
        let x = parse_session_xml(
            Path::new("s"),
            r#"<session feltArsl="0" feltVlnc="x" feltCtrl="10"/>"#,
        )
        .unwrap();
        assert_eq!(
            (x.felt_arousal, x.felt_valence, x.felt_control),
            (None, None, None)
        );
        assert_eq!(x.subject, None);
    }

    fn session(root: &Path, id: &str, xml: &str, bdf: Option<&str>) {
        let dir = root.join(id);
        std::fs::create_dir_all(&dir).unwrap();
        if !xml.is_empty() {
            std::fs::write(dir.join("session.xml"), xml).unwrap();
        }
        if let Some(name) = bdf {
            std::fs::write(dir.join(name), b"not read here").unwrap();
        }
    }

    fn xml(subject: u16, stim: u8, arousal: &str) -> String {
        format!(
            r#"<session isStim="{stim}" feltArsl="{arousal}" feltVlnc="3" feltCtrl="4"><subject id="{subject}"/></session>"#
        )
    }

    #[test]
    fn discover_keeps_usable_sessions_and_counts_the_rest() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("Sessions");
        session(&root, "10", &xml(2, 1, "6"), Some("a.bdf"));
        session(&root, "2", &xml(1, 1, "2"), Some("b.bdf"));
        session(&root, "4", &xml(1, 1, "9"), Some("c.BDF"));
        session(&root, "6", &xml(1, 0, "5"), Some("d.bdf"));
        session(&root, "8", &xml(1, 1, ""), Some("e.bdf"));
        session(&root, "12", &xml(2, 1, "5"), None);
        session(&root, "14", "", Some("f.bdf"));
        session(
            &root,
            "16",
            r#"<session isStim="1" feltArsl="5" feltVlnc="5"/>"#,
            Some("g.bdf"),
        );
        session(
            &root,
            "18",
            r#"<session experimentType="implicit tagging"><subject id="1"/></session>"#,
            Some("g.bdf"),
        );
        // Passing the parent folder finds `Sessions` inside it.
        let d = discover(tmp.path()).unwrap();
        let got: Vec<(String, u16, u16)> = d
            .sessions
            .iter()
            .map(|s| (s.id.clone(), s.subject, s.trial))
            .collect();
        assert_eq!(
            got,
            vec![("2".into(), 1, 1), ("4".into(), 1, 2), ("10".into(), 2, 1)]
        );
        assert_eq!(d.sessions[1].bdf, root.join("4").join("c.BDF"));
        assert_eq!(d.sessions[0].arousal, 2.0);
        assert_eq!(d.sessions[0].dominance, Some(4.0));
        assert_eq!(
            d.skipped,
            Skipped {
                no_stimulus: 1,
                missing_ratings: 1,
                missing_files: 2,
                missing_subject: 1,
                other_experiment: 1
            }
        );
        assert_eq!(d.skipped.total(), 6);
        assert_eq!(d.warnings.len(), 5);
        assert!(
            d.warnings
                .iter()
                .any(|w| w == "skipped 2 session(s): missing session.xml or .bdf file: 12, 14"),
            "{:?}",
            d.warnings
        );
    }

    #[test]
    fn track_filename_picks_among_several_bdfs() {
        let tmp = tempfile::tempdir().unwrap();
        let x = r#"<session isStim="1" feltArsl="5" feltVlnc="5"><subject id="1"/><track filename="b.bdf"/></session>"#;
        session(tmp.path(), "2", x, Some("a.bdf"));
        std::fs::write(tmp.path().join("2/b.bdf"), b"x").unwrap();
        let d = discover(tmp.path()).unwrap();
        assert_eq!(d.sessions[0].bdf, tmp.path().join("2/b.bdf"));
    }

    #[test]
    fn missing_or_empty_folder_says_what_to_download() {
        let tmp = tempfile::tempdir().unwrap();
        let e = discover(&tmp.path().join("nope")).unwrap_err().to_string();
        assert!(
            e.contains("no such folder") && e.contains("MAHNOB-HCI") && e.contains("Sessions"),
            "{e}"
        );
        let e = discover(tmp.path()).unwrap_err().to_string();
        assert!(
            e.contains("no session folders found") && e.contains("mahnob-db.eu"),
            "{e}"
        );
    }
}
