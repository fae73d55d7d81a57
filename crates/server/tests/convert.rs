//! The converter against the real tools: LibreOffice and poppler must be installed (CI
//! installs them, `.ci/run`); without them these tests fail and say what to install.

use std::path::Path;
use std::time::Duration;

use enclave_server::convert::{
    self, detect, sample, ConvertError, ConvertLimits, Converter, Format, Page, Tool,
};

fn require_tools() {
    if let Err(missing) = Converter::default().tools_available() {
        panic!("the converter's tools are missing: {missing}");
    }
}

/// Each page is a PNG of the page's aspect ratio, with its long side at the limit.
fn check_pages(pages: &[Page], width: f64, height: f64, long_side: u32) {
    for (i, p) in pages.iter().enumerate() {
        let expected = width / height;
        let got = f64::from(p.width) / f64::from(p.height);
        assert!(
            (got / expected - 1.0).abs() < 0.01,
            "page {}: {}x{} is not {width}:{height}",
            i + 1,
            p.width,
            p.height
        );
        assert!(
            p.width.max(p.height) <= long_side && p.width.max(p.height) >= long_side - 2,
            "page {}: {}x{}",
            i + 1,
            p.width,
            p.height
        );
        let bytes = std::fs::read(&p.path).expect("page image");
        assert_eq!(
            convert::png::dimensions(&bytes),
            Ok((p.width, p.height)),
            "page {}",
            i + 1
        );
    }
    let names: Vec<_> = pages.iter().map(|p| p.path.clone()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "pages out of order");
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write input");
    path
}

#[tokio::test]
async fn a_pdf_becomes_one_image_per_page() {
    require_tools();
    let dir = tempfile::tempdir().expect("temp dir");
    // Named without an extension, as uploads are stored: the type comes from the bytes.
    let input = write(dir.path(), "upload", &sample::pdf(7, 612, 792));
    let pages = convert::convert(&input, &dir.path().join("work"), &ConvertLimits::default())
        .await
        .expect("converted");
    assert_eq!(pages.len(), 7);
    check_pages(&pages, 612.0, 792.0, 1600);

    // Landscape, and a smaller long side.
    let input = write(dir.path(), "wide", &sample::pdf(2, 842, 595));
    let limits = ConvertLimits {
        long_side_px: 800,
        ..ConvertLimits::default()
    };
    let pages = convert::convert(&input, &dir.path().join("work-wide"), &limits)
        .await
        .expect("converted");
    assert_eq!(pages.len(), 2);
    check_pages(&pages, 842.0, 595.0, 800);
    assert!(pages[0].width > pages[0].height);
}

#[tokio::test]
async fn a_flat_opendocument_text_becomes_its_pages() {
    require_tools();
    let dir = tempfile::tempdir().expect("temp dir");
    let input = write(dir.path(), "upload", sample::fodt(3).as_bytes());
    // A work directory whose name needs percent-encoding in LibreOffice's profile URL.
    let pages = Converter::default()
        .convert(&input, &dir.path().join("work dir 100%"))
        .await
        .expect("converted");
    assert_eq!(pages.len(), 3);
    check_pages(&pages, 21.0, 29.7, 1600);
}

/// A document may link a section to a local file; LibreOffice must not fill it in (the pages
/// would show a file of the server to the room). Checked in the PDF it wrote (`pdf/`).
#[tokio::test]
async fn a_linked_local_file_is_not_pulled_into_the_pages() {
    require_tools();
    let dir = tempfile::tempdir().expect("temp dir");
    let secret = write(dir.path(), "secret.txt", b"SERVER-SECRET-7f3a");
    let doc = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<office:document xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" xmlns:xlink="http://www.w3.org/1999/xlink" office:version="1.2" office:mimetype="application/vnd.oasis.opendocument.text">
<office:body><office:text><text:p>Before</text:p>
<text:section text:name="S1"><text:section-source xlink:href="file://{}" xlink:type="simple" text:filter-name="Text"/><text:p>placeholder</text:p></text:section>
<text:p>After</text:p></office:text></office:body></office:document>
"#,
        secret.display()
    );
    let input = write(dir.path(), "upload", doc.as_bytes());
    let work = dir.path().join("work");
    let pages = convert::convert(&input, &work, &ConvertLimits::default())
        .await
        .expect("converted");
    assert_eq!(pages.len(), 1);
    let text = std::process::Command::new("pdftotext")
        .arg(work.join("pdf/input.pdf"))
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils) runs");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("placeholder"), "{text}");
    assert!(
        !text.contains("SERVER-SECRET"),
        "the linked file was read: {text}"
    );
}

/// `.odt` and `.docx` (zip archives), made from the flat document by LibreOffice itself.
#[tokio::test]
async fn odt_and_docx_archives_become_their_pages() {
    require_tools();
    let dir = tempfile::tempdir().expect("temp dir");
    let fodt = write(dir.path(), "source.fodt", sample::fodt(2).as_bytes());
    for (ext, format) in [("odt", Format::Odt), ("docx", Format::Docx)] {
        let out = dir.path().join(format!("made-{ext}"));
        let status = std::process::Command::new("soffice")
            .arg("--headless")
            .arg("--norestore")
            .arg(format!(
                "-env:UserInstallation=file://{}",
                dir.path().join(format!("profile-{ext}")).display()
            ))
            .args(["--convert-to", ext, "--outdir"])
            .arg(&out)
            .arg(&fodt)
            .env("HOME", dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("soffice runs");
        assert!(status.success(), "soffice --convert-to {ext}: {status}");
        let made = std::fs::read(out.join(format!("source.{ext}"))).expect("converted file");
        assert_eq!(detect::detect(&made), Ok(format));
        // Stored under a misleading name: the bytes decide.
        let input = write(dir.path(), &format!("{ext}-upload.pdf"), &made);
        let pages = convert::convert(
            &input,
            &dir.path().join(format!("work-{ext}")),
            &ConvertLimits::default(),
        )
        .await
        .unwrap_or_else(|e| panic!("{ext}: {e}"));
        assert_eq!(pages.len(), 2, "{ext}");
        check_pages(&pages, 21.0, 29.7, 1600);

        // The same archive with its entries' data scrambled (the central directory intact):
        // it still looks like a document, LibreOffice cannot load it and says so, exit 0.
        let mut bad = made.clone();
        let half = bad.len() / 2;
        for b in &mut bad[100..half] {
            *b ^= 0x5a;
        }
        assert_eq!(detect::detect(&bad), Ok(format), "{ext}");
        let input = write(dir.path(), &format!("bad-{ext}"), &bad);
        let e = convert::convert(
            &input,
            &dir.path().join(format!("work-bad-{ext}")),
            &ConvertLimits::default(),
        )
        .await
        .expect_err("a scrambled archive");
        assert!(
            matches!(
                &e,
                ConvertError::ToolFailed {
                    tool: Tool::Soffice,
                    ..
                }
            ),
            "{ext}: {e}"
        );
        assert!(e.to_string().contains("no PDF written"), "{ext}: {e}");
    }
}

/// Each conversion has a LibreOffice profile of its own: two at once do not wait on (or
/// hand their document to) each other.
#[tokio::test]
async fn two_office_conversions_at_once() {
    require_tools();
    let dir = tempfile::tempdir().expect("temp dir");
    let a = write(dir.path(), "a", sample::fodt(2).as_bytes());
    let b = write(dir.path(), "b", sample::fodt(4).as_bytes());
    let limits = ConvertLimits::default();
    let (wa, wb) = (dir.path().join("wa"), dir.path().join("wb"));
    let (pa, pb) = tokio::join!(
        convert::convert(&a, &wa, &limits),
        convert::convert(&b, &wb, &limits)
    );
    assert_eq!(pa.expect("a").len(), 2);
    assert_eq!(pb.expect("b").len(), 4);
}

#[tokio::test]
async fn too_many_pages_are_refused_before_rendering() {
    require_tools();
    let dir = tempfile::tempdir().expect("temp dir");
    let input = write(dir.path(), "upload", &sample::pdf(12, 612, 792));
    let work = dir.path().join("work");
    let limits = ConvertLimits {
        max_pages: 10,
        ..ConvertLimits::default()
    };
    let e = convert::convert(&input, &work, &limits)
        .await
        .expect_err("too many pages");
    assert!(
        matches!(e, ConvertError::TooManyPages { pages: 12, max: 10 }),
        "{e}"
    );
    assert_eq!(
        e.to_string(),
        "the document has 12 pages, more than the limit of 10"
    );
    let rendered = std::fs::read_dir(work.join("pages"))
        .expect("pages dir")
        .count();
    assert_eq!(rendered, 0, "pages were rendered before the refusal");
}

/// Live processes (not zombies) whose command line mentions `marker`.
fn processes_mentioning(marker: &str) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(marker) {
            found.push((pid, cmdline));
        }
    }
    found
}

#[tokio::test]
async fn a_conversion_past_its_time_is_killed_with_everything_it_started() {
    require_tools();
    let dir = tempfile::tempdir().expect("temp dir");
    let input = write(dir.path(), "upload", sample::fodt(3).as_bytes());
    let work = dir.path().join("work");
    let limits = ConvertLimits {
        // LibreOffice takes longer than this to start with a fresh profile.
        timeout: Duration::from_millis(400),
        ..ConvertLimits::default()
    };
    let started = std::time::Instant::now();
    let e = convert::convert(&input, &work, &limits)
        .await
        .expect_err("timeout");
    assert!(
        matches!(
            e,
            ConvertError::Timeout {
                tool: Tool::Soffice,
                ..
            }
        ),
        "{e}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // Every process of the conversion names the work directory (its profile, its input).
    let marker = work.to_str().expect("utf-8 path");
    let mut left = processes_mentioning(marker);
    for _ in 0..100 {
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        left = processes_mentioning(marker);
    }
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[tokio::test]
async fn garbage_and_broken_pdfs_are_refused_by_name() {
    require_tools();
    let dir = tempfile::tempdir().expect("temp dir");
    let garbage = write(
        dir.path(),
        "slides.pptx",
        b"\x00\x01 definitely not a document",
    );
    let e = convert::convert(&garbage, &dir.path().join("w1"), &ConvertLimits::default())
        .await
        .expect_err("garbage");
    assert!(matches!(e, ConvertError::NotADocument(_)), "{e}");

    // The right magic, then nothing a PDF reader can use.
    let broken = write(
        dir.path(),
        "broken",
        b"%PDF-1.4\nthis is where the objects would be\n",
    );
    let e = convert::convert(&broken, &dir.path().join("w2"), &ConvertLimits::default())
        .await
        .expect_err("broken");
    assert!(
        matches!(
            &e,
            ConvertError::ToolFailed {
                tool: Tool::Pdfinfo,
                ..
            }
        ),
        "{e}"
    );
    assert!(
        e.to_string().starts_with("pdfinfo failed (exit status "),
        "{e}"
    );
}
