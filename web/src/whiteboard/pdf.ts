// PDF in and out for the whiteboard, in its own lazy bundle (assets/lazy/): pdf.js renders a
// document's pages in the browser (an encrypted room's server never sees the document), and
// pdf-lib puts the board's pages, as images, into one PDF for export.
import { GlobalWorkerOptions, getDocument } from 'pdfjs-dist';
import { PDFDocument } from 'pdf-lib';

import type { PdfModule, RenderedPage } from './surface';

// The worker and the standard fonts are served beside this module (build.mjs copies them):
// nothing is fetched from anywhere else.
GlobalWorkerOptions.workerSrc = new URL('./pdf.worker.min.mjs', import.meta.url).href;
const FONTS = new URL('./pdf-fonts/', import.meta.url).href;
/** More pages than this is not a document for a whiteboard. */
const MAX_PAGES = 200;

function canvasPng(canvas: HTMLCanvasElement): Promise<Uint8Array<ArrayBuffer>> {
  return new Promise((resolve, reject) => {
    canvas.toBlob((b) => {
      if (!b) reject(new Error('the page could not be turned into an image'));
      else void b.arrayBuffer().then((a) => resolve(new Uint8Array(a)), reject);
    }, 'image/png');
  });
}

export const renderPdf: PdfModule['renderPdf'] = async (bytes, maxSide, onPage) => {
  // pdf.js takes ownership of the buffer it is given: hand it a copy.
  const task = getDocument({ data: new Uint8Array(bytes), standardFontDataUrl: FONTS, enableXfa: false });
  const doc = await task.promise;
  try {
    if (doc.numPages > MAX_PAGES) throw new Error(`the PDF has ${doc.numPages} pages; at most ${MAX_PAGES} go on the board`);
    const out: RenderedPage[] = [];
    for (let n = 1; n <= doc.numPages; n++) {
      const page = await doc.getPage(n);
      const base = page.getViewport({ scale: 1 });
      const scale = Math.min(4, maxSide / Math.max(base.width, base.height));
      const vp = page.getViewport({ scale });
      const canvas = document.createElement('canvas');
      canvas.width = Math.max(1, Math.round(vp.width));
      canvas.height = Math.max(1, Math.round(vp.height));
      const ctx = canvas.getContext('2d');
      if (!ctx) throw new Error('no 2D canvas to render the PDF on');
      ctx.fillStyle = '#ffffff';
      ctx.fillRect(0, 0, canvas.width, canvas.height);
      await page.render({ canvasContext: ctx, canvas, viewport: vp }).promise;
      out.push({ png: await canvasPng(canvas), width: canvas.width, height: canvas.height });
      page.cleanup();
      onPage(n, doc.numPages);
    }
    return out;
  } finally {
    void task.destroy();
  }
};

export const makePdf: PdfModule['makePdf'] = async (pages) => {
  const pdf = await PDFDocument.create();
  for (const p of pages) {
    const img = await pdf.embedPng(p.png);
    const page = pdf.addPage([p.width, p.height]);
    page.drawImage(img, { x: 0, y: 0, width: p.width, height: p.height });
  }
  // Without object streams: plain PDF 1.4 structure, which every reader opens.
  const bytes = await pdf.save({ useObjectStreams: false });
  return new Uint8Array(bytes);
};
