// The whiteboard's drawing surface: Excalidraw (with React) in its own bundle, built by
// build.mjs into assets/lazy/ and imported the first time someone opens the board, so the
// meeting's own bundle stays small. board.ts drives it through `BoardSurface` alone: this
// module knows Excalidraw, the rest of the client does not.
import { CaptureUpdateAction, Excalidraw, convertToExcalidrawElements, exportToBlob, restoreElements } from '@excalidraw/excalidraw';
import '@excalidraw/excalidraw/index.css';
import { createElement } from 'react';
import { createRoot, type Root } from 'react-dom/client';

import type { BoardSurface, SurfaceOptions } from './surface';
import type { WireElement } from './scene';

// Excalidraw's API types are reached through its component's props.
type Api = Parameters<NonNullable<Parameters<typeof Excalidraw>[0]['excalidrawAPI']>>[0];
type Elements = Parameters<Api['updateScene']>[0]['elements'];
type Files = Parameters<Api['addFiles']>[0];

export async function mount(container: HTMLElement, o: SurfaceOptions): Promise<BoardSurface> {
  const root: Root = createRoot(container);
  let viewMode = o.viewMode;
  let api: Api | null = null;
  let rerender: () => void = () => {};
  const ready = new Promise<Api>((resolve) => {
    const render = () =>
      root.render(
        createElement(Excalidraw, {
          excalidrawAPI: (a: Api) => {
            if (!api) {
              api = a;
              resolve(a);
            }
          },
          viewModeEnabled: viewMode,
          isCollaborating: true,
          autoFocus: true,
          // Nothing leaves this server: no saving to files, no libraries fetched from the web.
          UIOptions: { canvasActions: { loadScene: false, saveToActiveFile: false, export: false, saveAsImage: false }, tools: { image: false } },
          onChange: () => o.onChange(),
          onScrollChange: () => o.onScroll(),
        }),
      );
    rerender = render;
    render();
  });
  const a = await ready;
  return {
    elements: () => a.getSceneElementsIncludingDeleted() as unknown as readonly WireElement[],
    editing: () => {
      const s = a.getAppState() as { newElement?: { id: string } | null; editingTextElement?: { id: string } | null; selectedLinearElement?: { elementId: string } | null };
      const ids = new Set<string>();
      if (s.newElement) ids.add(s.newElement.id);
      if (s.editingTextElement) ids.add(s.editingTextElement.id);
      return ids;
    },
    show: (elements) => {
      // Remote changes are not ours to undo.
      a.updateScene({ elements: restoreElements(elements as unknown as Elements, null, { refreshDimensions: false, repairBindings: false }) as unknown as Elements, captureUpdate: CaptureUpdateAction.NEVER });
    },
    addImage: (id, dataURL, mimeType) => {
      a.addFiles([{ id, dataURL, mimeType, created: Date.now() }] as unknown as Files);
    },
    background: (id, fileId, width, height) => {
      const [el] = convertToExcalidrawElements([{ type: 'image', id, fileId, x: 0, y: 0, width, height, locked: true } as never], { regenerateIds: false });
      // Every browser builds the same background itself: fixed version and nonce, first in order.
      return { ...(el as unknown as WireElement), version: 1, versionNonce: 0, seed: 1, index: 'Zz', locked: true };
    },
    setViewMode: (v) => {
      if (v === viewMode) return;
      viewMode = v;
      rerender();
    },
    view: () => {
      const s = a.getAppState();
      return { scrollX: s.scrollX, scrollY: s.scrollY, zoom: s.zoom.value };
    },
    setView: (v) => {
      a.updateScene({ appState: { scrollX: v.scrollX, scrollY: v.scrollY, zoom: { value: v.zoom as never } }, captureUpdate: CaptureUpdateAction.NEVER });
    },
    exportPng: async (elements, files) => {
      const els = (elements ?? a.getSceneElements()).filter((e) => !e.isDeleted) as unknown as Parameters<typeof exportToBlob>[0]['elements'];
      return exportToBlob({
        elements: els,
        files: (files as Files | undefined) ? Object.fromEntries((files as unknown as Array<{ id: string }>).map((f) => [f.id, f])) as never : a.getFiles(),
        appState: { ...a.getAppState(), exportBackground: true, exportWithDarkMode: false },
        mimeType: 'image/png',
        exportPadding: 16,
      });
    },
    destroy: () => root.unmount(),
  };
}
