//! Office and PDF files put on the whiteboard of a plain room, turned into page images.
//!
//! [`convert`] reads the file's type from its first bytes ([`detect`]; never from its name),
//! has LibreOffice turn an office document into a PDF, counts the PDF's pages with `pdfinfo`
//! (refusing more than [`ConvertLimits::max_pages`] before anything is rendered), renders each
//! page with `pdftoppm` to a PNG whose long side is [`ConvertLimits::long_side_px`], and reads
//! each PNG's size from its header ([`png`]). Every tool runs as a sandboxed child process
//! ([`sandbox`]): its own process group, killed whole at the deadline; resource limits; an
//! empty environment; the work directory as its home and current directory.
//!
//! An encrypted room never comes here: the browser renders there (`docs/content.md`).

pub mod detect;
mod jobs;
pub mod png;
#[doc(hidden)]
pub mod sample;
mod sandbox;

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::time::Instant;

pub use detect::Format;
pub use jobs::{Claim, Jobs};

/// One rendered page: a PNG file in the work directory, and its size in pixels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub path: PathBuf,
    pub width: u32,
    pub height: u32,
}

/// What one conversion may use. The resource limits apply to each child process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvertLimits {
    /// Wall-clock time for the whole conversion (every tool together); at the deadline the
    /// running tool's process group is killed.
    pub timeout: Duration,
    /// Documents with more pages are refused before any page is rendered.
    pub max_pages: u32,
    /// Larger input files are refused unread.
    pub max_input_bytes: u64,
    /// The long side of each page image, in pixels.
    pub long_side_px: u32,
    /// The resolution pdftoppm renders at before scaling to `long_side_px`.
    pub dpi: u32,
    /// `RLIMIT_AS` of each child: LibreOffice starts and converts within 2 GiB.
    pub address_space_bytes: u64,
    /// `RLIMIT_CPU` of each child, in seconds.
    pub cpu_secs: u64,
    /// `RLIMIT_FSIZE` of each child: the largest file it may write, so it cannot fill the disk.
    pub file_size_bytes: u64,
}

impl Default for ConvertLimits {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(60),
            max_pages: 100,
            max_input_bytes: 100 << 20,
            long_side_px: 1600,
            dpi: 150,
            address_space_bytes: 2 << 30,
            cpu_secs: 60,
            file_size_bytes: 256 << 20,
        }
    }
}

/// A program the converter runs, and the Debian package that brings it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tool {
    /// LibreOffice: office documents to PDF.
    Soffice,
    /// Poppler: a PDF's page count.
    Pdfinfo,
    /// Poppler: a PDF's pages to PNG.
    Pdftoppm,
    /// util-linux: sets the resource limits of each child, then executes it (the workspace
    /// forbids `unsafe`, which a `pre_exec` hook calling `setrlimit` would need).
    Prlimit,
}

impl Tool {
    pub const ALL: [Tool; 4] = [Tool::Soffice, Tool::Pdfinfo, Tool::Pdftoppm, Tool::Prlimit];

    /// The program's name, looked up on `PATH`.
    pub fn program(self) -> &'static str {
        match self {
            Tool::Soffice => "soffice",
            Tool::Pdfinfo => "pdfinfo",
            Tool::Pdftoppm => "pdftoppm",
            Tool::Prlimit => "prlimit",
        }
    }

    /// The Debian packages to install when the program is missing.
    pub fn packages(self) -> &'static str {
        match self {
            Tool::Soffice => {
                "libreoffice-writer-nogui libreoffice-impress-nogui libreoffice-calc-nogui"
            }
            Tool::Pdfinfo | Tool::Pdftoppm => "poppler-utils",
            Tool::Prlimit => "util-linux",
        }
    }
}

impl fmt::Display for Tool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.program())
    }
}

/// Why a conversion failed.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error("{tool} not found on PATH: install {}", tool.packages())]
    ToolMissing { tool: Tool },
    #[error(
        "{tool} was still running when the conversion's time limit ({} s) ran out; its process group was killed",
        limit.as_secs_f64()
    )]
    Timeout { tool: Tool, limit: Duration },
    #[error("the document has {pages} pages, more than the limit of {max}")]
    TooManyPages { pages: u32, max: u32 },
    #[error("the file is {size} bytes, more than the limit of {max}")]
    TooLarge { size: u64, max: u64 },
    #[error("not a document: {0}")]
    NotADocument(&'static str),
    #[error("{tool} failed ({status}): {output}")]
    ToolFailed {
        tool: Tool,
        /// The exit code, or the signal that ended it and what that signal means here.
        status: String,
        /// The last lines it wrote (stderr, then stdout).
        output: String,
    },
    #[error("{tool} gave no usable result: {what}")]
    BadOutput { tool: Tool, what: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

/// The tools that are not on `PATH` (never empty), each with the package that brings it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.0.iter().map(|t| format!("{t} not found on PATH: install {}", t.packages())).collect::<Vec<_>>().join("; "))]
pub struct ToolsMissing(pub Vec<Tool>);

/// A converter with its limits, for the server to build once: [`Converter::tools_available`]
/// says at start whether conversion can work at all.
#[derive(Debug, Clone, Default)]
pub struct Converter {
    limits: ConvertLimits,
}

impl Converter {
    pub fn new(limits: ConvertLimits) -> Self {
        Self { limits }
    }

    pub fn limits(&self) -> &ConvertLimits {
        &self.limits
    }

    /// `Ok` when every tool is on `PATH`; otherwise which are missing and what to install.
    pub fn tools_available(&self) -> Result<(), ToolsMissing> {
        let path = search_path();
        let missing: Vec<Tool> = Tool::ALL
            .into_iter()
            .filter(|t| find_program(t.program(), &path).is_none())
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(ToolsMissing(missing))
        }
    }

    /// [`convert`] with this converter's limits.
    pub async fn convert(&self, input: &Path, work_dir: &Path) -> Result<Vec<Page>, ConvertError> {
        convert(input, work_dir, &self.limits).await
    }
}

/// Converts the office or PDF file `input` into one PNG per page, in order, written under
/// `work_dir` (created if missing; the caller removes it). Tools run with `work_dir` as their
/// home and current directory, so it should be a fresh directory of this conversion only.
///
/// What it holds afterwards: `input.<ext>` (a copy, named after the detected type), `pdf/`
/// (LibreOffice's `input.pdf`), `pages/page-<n>.png` (the pages returned), and `profile/`,
/// `tmp/` and LibreOffice's settings (its home).
pub async fn convert(
    input: &Path,
    work_dir: &Path,
    limits: &ConvertLimits,
) -> Result<Vec<Page>, ConvertError> {
    let deadline = Instant::now() + limits.timeout;
    let size = tokio::fs::metadata(input)
        .await
        .map_err(|e| io_error(format!("reading {}", input.display()), e))?
        .len();
    if size > limits.max_input_bytes {
        return Err(ConvertError::TooLarge {
            size,
            max: limits.max_input_bytes,
        });
    }
    let bytes = tokio::fs::read(input)
        .await
        .map_err(|e| io_error(format!("reading {}", input.display()), e))?;
    let format = detect::detect(&bytes).map_err(ConvertError::NotADocument)?;

    let work_dir = std::path::absolute(work_dir)
        .map_err(|e| io_error(format!("resolving {}", work_dir.display()), e))?;
    for sub in ["", "tmp", "pdf", "pages"] {
        let dir = work_dir.join(sub);
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| io_error(format!("creating {}", dir.display()), e))?;
    }
    // The tools get a copy named after the detected type: LibreOffice picks its import filter
    // by the extension first, and nothing of the uploaded name reaches a command line.
    let copy = work_dir.join(format!("input.{}", format.extension()));
    tokio::fs::write(&copy, &bytes)
        .await
        .map_err(|e| io_error(format!("writing {}", copy.display()), e))?;
    drop(bytes);

    let pdf = if format == Format::Pdf {
        copy
    } else {
        to_pdf(&copy, &work_dir, deadline, limits).await?
    };
    let pages = page_count(&pdf, &work_dir, deadline, limits).await?;
    if pages > limits.max_pages {
        return Err(ConvertError::TooManyPages {
            pages,
            max: limits.max_pages,
        });
    }
    render(&pdf, pages, &work_dir, deadline, limits).await
}

/// LibreOffice headless: `input` to `work_dir/pdf/input.pdf`.
async fn to_pdf(
    input: &Path,
    work_dir: &Path,
    deadline: Instant,
    limits: &ConvertLimits,
) -> Result<PathBuf, ConvertError> {
    let out_dir = work_dir.join("pdf");
    // A profile of its own: LibreOffice hands a document to an instance already running on
    // the same profile, so conversions sharing one would wait on (or crash with) each other.
    let profile = format!(
        "-env:UserInstallation={}",
        file_url(&work_dir.join("profile"))
    );
    let args: Vec<OsString> = vec![
        "--headless".into(),
        "--norestore".into(),
        profile.into(),
        "--convert-to".into(),
        "pdf".into(),
        "--outdir".into(),
        out_dir.clone().into(),
        input.into(),
    ];
    let out = sandbox::run(Tool::Soffice, &args, work_dir, deadline, limits).await?;
    let pdf = out_dir.join("input.pdf");
    // soffice exits 0 when it cannot load a document; only the missing file tells.
    if !tokio::fs::try_exists(&pdf).await.unwrap_or(false) {
        return Err(ConvertError::ToolFailed {
            tool: Tool::Soffice,
            status: "exit status 0 but no PDF written".into(),
            output: out.last_lines(),
        });
    }
    Ok(pdf)
}

/// The page count from `pdfinfo`.
async fn page_count(
    pdf: &Path,
    work_dir: &Path,
    deadline: Instant,
    limits: &ConvertLimits,
) -> Result<u32, ConvertError> {
    let out = sandbox::run(Tool::Pdfinfo, &[pdf.into()], work_dir, deadline, limits).await?;
    parse_pages(&String::from_utf8_lossy(&out.stdout)).ok_or_else(|| ConvertError::BadOutput {
        tool: Tool::Pdfinfo,
        what: format!("no page count in its output: {}", out.last_lines()),
    })
}

/// The `Pages:` line of pdfinfo's output. The last one: the document's title and other
/// metadata come before it and may contain a line of their own that looks like it.
fn parse_pages(info: &str) -> Option<u32> {
    info.lines()
        .rev()
        .find_map(|l| l.strip_prefix("Pages:"))?
        .trim()
        .parse()
        .ok()
}

/// `pdftoppm` renders pages 1..=`pages` to `work_dir/pages/page-<n>.png`.
async fn render(
    pdf: &Path,
    pages: u32,
    work_dir: &Path,
    deadline: Instant,
    limits: &ConvertLimits,
) -> Result<Vec<Page>, ConvertError> {
    let pages_dir = work_dir.join("pages");
    let args: Vec<OsString> = vec![
        "-png".into(),
        "-r".into(),
        limits.dpi.to_string().into(),
        "-scale-to".into(),
        limits.long_side_px.to_string().into(),
        // Only the pages counted: a PDF cannot render more than pdfinfo said.
        "-f".into(),
        "1".into(),
        "-l".into(),
        pages.to_string().into(),
        pdf.into(),
        pages_dir.join("page").into(),
    ];
    sandbox::run(Tool::Pdftoppm, &args, work_dir, deadline, limits).await?;

    let mut found = Vec::new();
    let mut dir = tokio::fs::read_dir(&pages_dir)
        .await
        .map_err(|e| io_error(format!("listing {}", pages_dir.display()), e))?;
    while let Some(entry) = dir
        .next_entry()
        .await
        .map_err(|e| io_error(format!("listing {}", pages_dir.display()), e))?
    {
        let name = entry.file_name();
        // pdftoppm pads the number to the width of the last page's: page-01.png … page-12.png.
        let n = name
            .to_str()
            .and_then(|n| n.strip_prefix("page-")?.strip_suffix(".png")?.parse().ok());
        match n {
            Some(n) => found.push((n, entry.path())),
            None => {
                return Err(ConvertError::BadOutput {
                    tool: Tool::Pdftoppm,
                    what: format!("an unexpected file {:?}", name),
                })
            }
        }
    }
    found.sort_unstable_by_key(|(n, _)| *n);
    let numbers: Vec<u32> = found.iter().map(|(n, _)| *n).collect();
    if numbers != (1..=pages).collect::<Vec<_>>() {
        return Err(ConvertError::BadOutput {
            tool: Tool::Pdftoppm,
            what: format!("{} page images for {pages} pages", found.len()),
        });
    }
    let mut out = Vec::with_capacity(found.len());
    for (_, path) in found {
        let (width, height) = read_png_size(&path).await?;
        out.push(Page {
            path,
            width,
            height,
        });
    }
    Ok(out)
}

async fn read_png_size(path: &Path) -> Result<(u32, u32), ConvertError> {
    use tokio::io::AsyncReadExt;
    let mut head = Vec::with_capacity(png::HEADER_LEN);
    tokio::fs::File::open(path)
        .await
        .map_err(|e| io_error(format!("opening {}", path.display()), e))?
        .take(png::HEADER_LEN as u64)
        .read_to_end(&mut head)
        .await
        .map_err(|e| io_error(format!("reading {}", path.display()), e))?;
    png::dimensions(&head).map_err(|e| ConvertError::BadOutput {
        tool: Tool::Pdftoppm,
        what: format!("{}: {e}", path.display()),
    })
}

/// A `file://` URL of an absolute path, every byte but the unreserved ones and `/`
/// percent-encoded (a data directory may hold spaces or `%`).
fn file_url(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut url = String::from("file://");
    for &b in path.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            url.push(char::from(b));
        } else {
            url.push_str(&format!("%{b:02X}"));
        }
    }
    url
}

fn io_error(what: String, source: std::io::Error) -> ConvertError {
    ConvertError::Io { what, source }
}

/// The `PATH` the tools are looked up on and run with: the server's, or the usual one.
fn search_path() -> OsString {
    std::env::var_os("PATH")
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into())
}

/// The first executable file named `program` on `path`.
fn find_program(program: &str, path: &std::ffi::OsStr) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::env::split_paths(path)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(program))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_pages_line_counts() {
        let info = "Title:           x\nPages: 1\nProducer:        y\nPages:           12\nEncrypted:       no\n";
        assert_eq!(parse_pages(info), Some(12));
        assert_eq!(parse_pages("Title: x\n"), None);
        assert_eq!(parse_pages("Pages: many\n"), None);
        assert_eq!(parse_pages("Pages: -3\n"), None);
    }

    #[test]
    fn profile_urls_are_percent_encoded() {
        assert_eq!(
            file_url(Path::new("/srv/data dir/50%/profile")),
            "file:///srv/data%20dir/50%25/profile"
        );
        assert_eq!(
            file_url(Path::new("/srv/a-b_c.d~e")),
            "file:///srv/a-b_c.d~e"
        );
    }

    #[test]
    fn default_limits_are_the_documented_ones() {
        let l = ConvertLimits::default();
        assert_eq!(l.timeout, Duration::from_secs(60));
        assert_eq!(l.max_pages, 100);
        assert_eq!(l.long_side_px, 1600);
        assert_eq!(l.address_space_bytes, 2 * 1024 * 1024 * 1024);
    }

    #[test]
    fn a_missing_tool_names_its_package() {
        let e = ConvertError::ToolMissing {
            tool: Tool::Soffice,
        };
        assert_eq!(
            e.to_string(),
            "soffice not found on PATH: install libreoffice-writer-nogui libreoffice-impress-nogui libreoffice-calc-nogui"
        );
        let m = ToolsMissing(vec![Tool::Pdftoppm, Tool::Prlimit]);
        assert_eq!(
            m.to_string(),
            "pdftoppm not found on PATH: install poppler-utils; prlimit not found on PATH: install util-linux"
        );
    }

    #[test]
    fn programs_are_found_only_where_they_are() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = std::env::join_paths([dir.path()]).expect("path");
        assert_eq!(find_program("sh", &path), None);
        assert!(find_program("sh", std::ffi::OsStr::new("/bin:/usr/bin")).is_some());
        // A relative directory on PATH is never searched (it would depend on the cwd).
        assert_eq!(find_program("sh", std::ffi::OsStr::new("bin")), None);
    }

    #[tokio::test]
    async fn a_large_file_is_refused_unread() {
        let dir = tempfile::tempdir().expect("temp dir");
        let input = dir.path().join("big");
        std::fs::write(&input, vec![b'%'; 2048]).expect("write");
        let limits = ConvertLimits {
            max_input_bytes: 1024,
            ..ConvertLimits::default()
        };
        let e = convert(&input, &dir.path().join("work"), &limits)
            .await
            .expect_err("too large");
        assert!(
            matches!(
                e,
                ConvertError::TooLarge {
                    size: 2048,
                    max: 1024
                }
            ),
            "{e}"
        );
    }

    #[tokio::test]
    async fn garbage_is_not_a_document() {
        let dir = tempfile::tempdir().expect("temp dir");
        let input = dir.path().join("report.pdf");
        std::fs::write(&input, b"this is not a PDF, whatever its name says").expect("write");
        let e = convert(&input, &dir.path().join("work"), &ConvertLimits::default())
            .await
            .expect_err("garbage");
        assert!(matches!(e, ConvertError::NotADocument(_)), "{e}");
        // Refused before any tool ran or anything was written.
        assert!(!dir.path().join("work").exists());
    }
}
