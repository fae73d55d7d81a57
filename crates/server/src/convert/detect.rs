//! A file's type from its bytes, never from its name: PDF (`%PDF-`), OOXML and OpenDocument
//! (zip archives, told apart by the names in their central directory and ODF's `mimetype`
//! entry), legacy Office (OLE2 compound files, told apart by their stream names), RTF, and flat
//! OpenDocument XML. Untrusted bytes: every read is bounds-checked, nothing panics.

/// A type the converter accepts. Each office type goes to LibreOffice under its usual
/// extension, so its import filter is the right one whatever the upload was called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Pdf,
    Docx,
    Xlsx,
    Pptx,
    Odt,
    Ods,
    Odp,
    /// Flat (single XML file) OpenDocument text, spreadsheet, presentation.
    Fodt,
    Fods,
    Fodp,
    Doc,
    Xls,
    Ppt,
    Rtf,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Pdf => "pdf",
            Format::Docx => "docx",
            Format::Xlsx => "xlsx",
            Format::Pptx => "pptx",
            Format::Odt => "odt",
            Format::Ods => "ods",
            Format::Odp => "odp",
            Format::Fodt => "fodt",
            Format::Fods => "fods",
            Format::Fodp => "fodp",
            Format::Doc => "doc",
            Format::Xls => "xls",
            Format::Ppt => "ppt",
            Format::Rtf => "rtf",
        }
    }
}

const ZIP_LOCAL: &[u8] = b"PK\x03\x04";
const ZIP_CENTRAL: &[u8] = b"PK\x01\x02";
const ZIP_END: &[u8] = b"PK\x05\x06";
const OLE2: &[u8] = b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1";
const ODF_MIME: &str = "application/vnd.oasis.opendocument.";

/// The file's format, or why it is not a document the converter takes.
pub fn detect(bytes: &[u8]) -> Result<Format, &'static str> {
    if bytes.starts_with(b"%PDF-") {
        Ok(Format::Pdf)
    } else if bytes.starts_with(ZIP_LOCAL) {
        zip(bytes)
    } else if bytes.starts_with(OLE2) {
        ole2(bytes)
    } else if bytes.starts_with(b"{\\rtf") {
        Ok(Format::Rtf)
    } else if let Some(f) = flat_odf(bytes) {
        Ok(f)
    } else {
        Err("its first bytes are those of neither a PDF, an OOXML or OpenDocument zip, a legacy Office (OLE2) file, RTF nor flat OpenDocument XML")
    }
}

/// OpenDocument: the first entry is `mimetype`, stored, with the type as its content (ODF 1.2
/// part 3, 3.3). OOXML: the main part's name in the central directory.
fn zip(bytes: &[u8]) -> Result<Format, &'static str> {
    let names = central_names(bytes).ok_or("a zip archive without a readable central directory")?;
    if names.iter().any(|n| *n == b"mimetype") {
        return match odf_mimetype(bytes) {
            Some("text") => Ok(Format::Odt),
            Some("spreadsheet") => Ok(Format::Ods),
            Some("presentation") => Ok(Format::Odp),
            _ => Err("an OpenDocument archive that is not a text, spreadsheet or presentation"),
        };
    }
    if !names.iter().any(|n| *n == b"[Content_Types].xml") {
        return Err("a zip archive that is neither OOXML nor OpenDocument");
    }
    for (part, format) in [
        (&b"word/document.xml"[..], Format::Docx),
        (b"ppt/presentation.xml", Format::Pptx),
        (b"xl/workbook.xml", Format::Xlsx),
    ] {
        if names.contains(&part) {
            return Ok(format);
        }
    }
    Err("an OOXML archive that is not a Word, PowerPoint or Excel document")
}

/// The subtype of the `mimetype` entry when it is the archive's first entry, stored: "text"
/// for `application/vnd.oasis.opendocument.text`.
fn odf_mimetype(bytes: &[u8]) -> Option<&str> {
    let method = u16_at(bytes, 8)?;
    let size = usize::try_from(u32_at(bytes, 18)?).ok()?;
    let name_len = usize::from(u16_at(bytes, 26)?);
    let extra_len = usize::from(u16_at(bytes, 28)?);
    if method != 0 || bytes.get(30..30 + name_len)? != b"mimetype" {
        return None;
    }
    let start = 30 + name_len + extra_len;
    let content = std::str::from_utf8(bytes.get(start..start.checked_add(size)?)?).ok()?;
    content.strip_prefix(ODF_MIME)
}

/// The entry names of a zip's central directory, found through its end record.
fn central_names(bytes: &[u8]) -> Option<Vec<&[u8]>> {
    // The end record is the last 22 bytes unless a comment (at most 65535 bytes) follows it.
    let floor = bytes.len().saturating_sub(22 + 65535);
    let end = (floor..=bytes.len().saturating_sub(22))
        .rev()
        .find(|&i| bytes.get(i..i + 4) == Some(ZIP_END))?;
    let count = u16_at(bytes, end + 10)?;
    let mut at = usize::try_from(u32_at(bytes, end + 16)?).ok()?;
    let mut names = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        if bytes.get(at..at + 4)? != ZIP_CENTRAL {
            return None;
        }
        let name_len = usize::from(u16_at(bytes, at + 28)?);
        let extra_len = usize::from(u16_at(bytes, at + 30)?);
        let comment_len = usize::from(u16_at(bytes, at + 32)?);
        names.push(bytes.get(at + 46..at + 46 + name_len)?);
        at += 46 + name_len + extra_len + comment_len;
    }
    Some(names)
}

/// Word, Excel and PowerPoint files keep their content in streams of known names; the names
/// are UTF-16LE in the compound file's directory.
fn ole2(bytes: &[u8]) -> Result<Format, &'static str> {
    for (stream, format) in [
        ("WordDocument", Format::Doc),
        ("PowerPoint Document", Format::Ppt),
        ("Workbook", Format::Xls),
        ("Book", Format::Xls),
    ] {
        let needle: Vec<u8> = stream.encode_utf16().flat_map(u16::to_le_bytes).collect();
        if bytes.windows(needle.len()).any(|w| w == needle) {
            return Ok(format);
        }
    }
    Err("an OLE2 compound file that is not a Word, Excel or PowerPoint document")
}

/// Flat OpenDocument: XML whose root is `office:document` with an `office:mimetype`, both
/// within the first 4 KiB.
fn flat_odf(bytes: &[u8]) -> Option<Format> {
    let head = bytes.get(..bytes.len().min(4096))?;
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let start = head.iter().position(|b| !b.is_ascii_whitespace())?;
    let head = String::from_utf8_lossy(head.get(start..)?);
    if !head.starts_with("<?xml") || !head.contains("<office:document ") {
        return None;
    }
    let mime = head.split("office:mimetype=").nth(1)?;
    let mime = mime.get(1..)?.strip_prefix(ODF_MIME)?;
    let sub = mime.split(['"', '\'']).next()?;
    match sub {
        "text" => Some(Format::Fodt),
        "spreadsheet" => Some(Format::Fods),
        "presentation" => Some(Format::Fodp),
        _ => None,
    }
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        b.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A zip of stored entries (no compression), as an ODF or OOXML writer lays them out.
    pub(super) fn stored_zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut central = Vec::new();
        for (name, data) in entries {
            let offset = out.len() as u32;
            let header = |sig: &[u8], central: bool| {
                let mut h = sig.to_vec();
                if central {
                    h.extend_from_slice(&20u16.to_le_bytes()); // made by
                }
                h.extend_from_slice(&20u16.to_le_bytes()); // version needed
                h.extend_from_slice(&[0; 4]); // flags, method: stored
                h.extend_from_slice(&[0; 4]); // time, date
                h.extend_from_slice(&[0; 4]); // crc (not checked here)
                h.extend_from_slice(&(data.len() as u32).to_le_bytes());
                h.extend_from_slice(&(data.len() as u32).to_le_bytes());
                h.extend_from_slice(&(name.len() as u16).to_le_bytes());
                h.extend_from_slice(&[0; 2]); // extra
                if central {
                    h.extend_from_slice(&[0; 6]); // comment, disk, internal attributes
                    h.extend_from_slice(&[0; 4]); // external attributes
                    h.extend_from_slice(&offset.to_le_bytes());
                }
                h.extend_from_slice(name.as_bytes());
                h
            };
            out.extend(header(ZIP_LOCAL, false));
            out.extend_from_slice(data);
            central.extend(header(ZIP_CENTRAL, true));
        }
        let cd_offset = out.len() as u32;
        out.extend_from_slice(&central);
        out.extend_from_slice(ZIP_END);
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        out.extend_from_slice(&(central.len() as u32).to_le_bytes());
        out.extend_from_slice(&cd_offset.to_le_bytes());
        out.extend_from_slice(&[0; 2]);
        out
    }

    fn ole2_with(stream: &str) -> Vec<u8> {
        let mut b = OLE2.to_vec();
        b.extend_from_slice(&[0; 504]);
        b.extend(stream.encode_utf16().flat_map(u16::to_le_bytes));
        b
    }

    #[test]
    fn pdf_rtf_and_ole2_by_their_magic() {
        assert_eq!(detect(b"%PDF-1.7\n..."), Ok(Format::Pdf));
        assert_eq!(detect(b"{\\rtf1\\ansi hello}"), Ok(Format::Rtf));
        assert_eq!(detect(&ole2_with("WordDocument")), Ok(Format::Doc));
        assert_eq!(detect(&ole2_with("Workbook")), Ok(Format::Xls));
        assert_eq!(detect(&ole2_with("PowerPoint Document")), Ok(Format::Ppt));
        assert!(detect(&ole2_with("Something")).is_err());
        // The magic must open the file, not appear in it.
        assert!(detect(b" %PDF-1.7").is_err());
    }

    #[test]
    fn odf_by_its_mimetype_entry() {
        for (mime, format) in [
            ("text", Format::Odt),
            ("spreadsheet", Format::Ods),
            ("presentation", Format::Odp),
        ] {
            let content = format!("{ODF_MIME}{mime}");
            let zip = stored_zip(&[("mimetype", content.as_bytes()), ("content.xml", b"<x/>")]);
            assert_eq!(detect(&zip), Ok(format), "{mime}");
        }
        let drawing = stored_zip(&[("mimetype", b"application/vnd.oasis.opendocument.graphics")]);
        assert!(detect(&drawing).is_err());
    }

    #[test]
    fn ooxml_by_its_main_part() {
        for (part, format) in [
            ("word/document.xml", Format::Docx),
            ("ppt/presentation.xml", Format::Pptx),
            ("xl/workbook.xml", Format::Xlsx),
        ] {
            let zip = stored_zip(&[("[Content_Types].xml", b"<Types/>"), (part, b"<x/>")]);
            assert_eq!(detect(&zip), Ok(format), "{part}");
        }
        // A zip of something else, and an OOXML package without a known main part.
        assert!(detect(&stored_zip(&[("readme.txt", b"hi")])).is_err());
        assert!(detect(&stored_zip(&[("[Content_Types].xml", b"<Types/>")])).is_err());
    }

    #[test]
    fn flat_odf_by_its_root_element() {
        let fodt = "\u{feff}\n<?xml version=\"1.0\"?>\n<office:document xmlns:office=\"urn:oasis:names:tc:opendocument:xmlns:office:1.0\" office:mimetype=\"application/vnd.oasis.opendocument.text\">";
        assert_eq!(detect(fodt.as_bytes()), Ok(Format::Fodt));
        let fods = fodt.replace(".text", ".spreadsheet");
        assert_eq!(detect(fods.as_bytes()), Ok(Format::Fods));
        assert!(detect(b"<?xml version=\"1.0\"?><html/>").is_err());
    }

    #[test]
    fn truncated_and_garbage_input_is_refused_without_panicking() {
        let zip = stored_zip(&[
            ("[Content_Types].xml", b"<T/>"),
            ("word/document.xml", b"<x/>"),
        ]);
        for n in 0..zip.len() {
            // Every prefix: a zip cut anywhere loses its end record, so it is not a document.
            assert!(detect(&zip[..n]).is_err(), "prefix of {n} bytes");
        }
        let odt = stored_zip(&[("mimetype", b"application/vnd.oasis.opendocument.text")]);
        for n in 0..odt.len() {
            let _ = detect(&odt[..n]);
        }
        // An end record pointing past the end, and a count larger than the entries.
        let mut bad = zip.clone();
        let end = bad.len() - 22;
        bad[end + 16..end + 20].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(detect(&bad).is_err());
        let mut bad = zip;
        bad[end + 10..end + 12].copy_from_slice(&500u16.to_le_bytes());
        assert!(detect(&bad).is_err());
        assert!(detect(b"").is_err());
        assert!(detect(b"PK\x03\x04").is_err());
        assert!(detect(&[0xff; 100]).is_err());
    }
}
