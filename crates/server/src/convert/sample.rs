//! Documents generated for tests and the benchmark, so no binary fixture is committed: a PDF
//! written by hand (text and shapes on each page) and a flat OpenDocument text with a page
//! break before each page.

/// A PDF of `pages` pages of `width` × `height` points, each with a heading, a few lines of
/// text, a filled rectangle, a circle and a diagonal line.
pub fn pdf(pages: u32, width: u32, height: u32) -> Vec<u8> {
    let mut objects: Vec<String> = Vec::new();
    let kids: String = (0..pages).map(|i| format!("{} 0 R ", 4 + 2 * i)).collect();
    objects.push("<< /Type /Catalog /Pages 2 0 R >>".into());
    objects.push(format!(
        "<< /Type /Pages /Kids [{kids}] /Count {pages} /MediaBox [0 0 {width} {height}] >>"
    ));
    objects.push("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".into());
    for i in 0..pages {
        let n = i + 1;
        let (w, h) = (f64::from(width), f64::from(height));
        let mut content = format!(
            "BT /F1 28 Tf 50 {} Td (Page {n} of {pages}) Tj ET\n",
            h - 70.0
        );
        for line in 0..8 {
            content += &format!(
                "BT /F1 12 Tf 50 {} Td (Line {} of page {n}: the quick brown fox jumps over the lazy dog.) Tj ET\n",
                h - 110.0 - 18.0 * f64::from(line),
                line + 1
            );
        }
        // A filled rectangle, a circle of four Bézier arcs, a diagonal.
        let (cx, cy, r) = (w * 0.7, h * 0.35, w.min(h) * 0.12);
        let k = r * 0.5523;
        content += &format!(
            "0.2 0.4 0.8 rg 50 {:.1} {:.1} {:.1} re f\n",
            h * 0.25,
            w * 0.3,
            h * 0.15
        );
        content += &format!(
            "0.8 0.2 0.2 RG 3 w {:.1} {cy:.1} m {:.1} {:.1} {:.1} {:.1} {cx:.1} {:.1} c \
             {:.1} {:.1} {:.1} {:.1} {:.1} {cy:.1} c \
             {:.1} {:.1} {:.1} {:.1} {cx:.1} {:.1} c \
             {:.1} {:.1} {:.1} {:.1} {:.1} {cy:.1} c S\n",
            cx + r,
            cx + r,
            cy + k,
            cx + k,
            cy + r,
            cy + r,
            cx - k,
            cy + r,
            cx - r,
            cy + k,
            cx - r,
            cx - r,
            cy - k,
            cx - k,
            cy - r,
            cy - r,
            cx + k,
            cy - r,
            cx + r,
            cy - k,
            cx + r,
        );
        content += &format!("0 0 0 RG 1 w 40 40 m {:.1} {:.1} l S\n", w - 40.0, h * 0.2);
        objects.push(format!(
            "<< /Type /Page /Parent 2 0 R /Resources << /Font << /F1 3 0 R >> >> /Contents {} 0 R >>",
            5 + 2 * i
        ));
        objects.push(format!(
            "<< /Length {} >>\nstream\n{content}endstream",
            content.len()
        ));
    }

    let mut out = b"%PDF-1.4\n%\xE2\xE3\xCF\xD3\n".to_vec();
    let mut offsets = Vec::with_capacity(objects.len());
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{body}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    let mut table = format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1);
    for o in offsets {
        table += &format!("{o:010} 00000 n \n");
    }
    table += &format!(
        "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
        objects.len() + 1
    );
    out.extend_from_slice(table.as_bytes());
    out
}

/// A flat OpenDocument text (`.fodt`, plain XML) of `pages` A4 pages: a heading and a few
/// paragraphs each, a page break before every heading but the first.
pub fn fodt(pages: u32) -> String {
    let mut body = String::new();
    for i in 1..=pages {
        let style = if i == 1 { "H" } else { "HBreak" };
        body += &format!("<text:h text:style-name=\"{style}\" text:outline-level=\"1\">Page {i} of {pages}</text:h>\n");
        for p in 1..=5 {
            body += &format!(
                "<text:p>Paragraph {p} of page {i}. The quick brown fox jumps over the lazy dog; \
                 a whiteboard shows this page as an image.</text:p>\n"
            );
        }
    }
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<office:document xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0" xmlns:fo="urn:oasis:names:tc:opendocument:xmlns:xsl-fo-compatible:1.0" office:version="1.2" office:mimetype="application/vnd.oasis.opendocument.text">
<office:automatic-styles>
<style:page-layout style:name="A4"><style:page-layout-properties fo:page-width="21cm" fo:page-height="29.7cm" fo:margin="2cm"/></style:page-layout>
<style:style style:name="H" style:family="paragraph"><style:text-properties fo:font-size="24pt" fo:font-weight="bold"/></style:style>
<style:style style:name="HBreak" style:family="paragraph"><style:paragraph-properties fo:break-before="page"/><style:text-properties fo:font-size="24pt" fo:font-weight="bold"/></style:style>
</office:automatic-styles>
<office:master-styles><style:master-page style:name="Standard" style:page-layout-name="A4"/></office:master-styles>
<office:body><office:text>
{body}</office:text></office:body></office:document>
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::detect::{detect, Format};

    #[test]
    fn samples_are_detected_as_what_they_are() {
        assert_eq!(detect(&pdf(3, 612, 792)), Ok(Format::Pdf));
        assert_eq!(detect(fodt(3).as_bytes()), Ok(Format::Fodt));
    }

    #[test]
    fn the_pdf_cross_reference_points_at_its_objects() {
        let doc = pdf(2, 400, 300);
        // Everything after the binary comment on the second line is ASCII.
        let tail = std::str::from_utf8(&doc[16..]).expect("ascii");
        let xref: usize = tail
            .rsplit("startxref\n")
            .next()
            .and_then(|t| t.lines().next())
            .and_then(|n| n.parse().ok())
            .expect("startxref");
        assert!(doc[xref..].starts_with(b"xref\n"));
        let text = std::str::from_utf8(&doc[xref..]).expect("ascii");
        for (i, line) in text.lines().skip(3).take(7).enumerate() {
            let at: usize = line[..10].parse().expect("offset");
            assert!(
                doc[at..].starts_with(format!("{} 0 obj", i + 1).as_bytes()),
                "object {}",
                i + 1
            );
        }
    }
}
