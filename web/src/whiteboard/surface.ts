// What the board (board.ts, in the main bundle) asks of the drawing surface (lazy.ts, in its
// own bundle) and of the PDF tools (pdf.ts, another): types only, so importing them costs the
// main bundle nothing.
import type { WireElement } from './scene';

export interface SurfaceOptions {
  /** View only (the whiteboard lock). */
  viewMode: boolean;
  /** Something changed in the scene or its state (called often: the board diffs versions). */
  onChange(): void;
  /** We scrolled or zoomed. */
  onScroll(): void;
}

export interface ImageFile {
  id: string;
  dataURL: string;
  mimeType: string;
}

export interface BoardSurface {
  /** The scene, deleted elements included. */
  elements(): readonly WireElement[];
  /** Elements being drawn or typed here right now (not to be replaced from the wire). */
  editing(): Set<string>;
  /** Shows `elements` as the scene (no undo entry). */
  show(elements: readonly WireElement[]): void;
  addImage(id: string, dataURL: string, mimeType: string): void;
  /** A locked image element for a page's background, the same in every browser. */
  background(id: string, fileId: string, width: number, height: number): WireElement;
  setViewMode(viewOnly: boolean): void;
  view(): { scrollX: number; scrollY: number; zoom: number };
  setView(v: { scrollX: number; scrollY: number; zoom: number }): void;
  /** A PNG of `elements` (default: the scene) with `files` (default: the scene's). */
  exportPng(elements?: readonly WireElement[], files?: ImageFile[]): Promise<Blob>;
  destroy(): void;
}

export interface SurfaceModule {
  mount(container: HTMLElement, o: SurfaceOptions): Promise<BoardSurface>;
}

export interface RenderedPage {
  png: Uint8Array<ArrayBuffer>;
  width: number;
  height: number;
}

export interface PdfModule {
  /** Renders each page of a PDF to a PNG (at most `maxSide` pixels on its longer side). */
  renderPdf(bytes: Uint8Array, maxSide: number, onPage: (done: number, total: number) => void): Promise<RenderedPage[]>;
  /** One PDF with a page per PNG, each page the image's size. */
  makePdf(pages: Array<{ png: Uint8Array; width: number; height: number }>): Promise<Uint8Array<ArrayBuffer>>;
}
