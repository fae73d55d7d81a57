// Stands in for @excalidraw/mermaid-to-excalidraw in the whiteboard bundle (build.mjs aliases
// it): Mermaid would add some 7 MB to what the first open of the board loads, for a feature
// (text to diagram, pasting Mermaid) the board does not offer. Excalidraw catches the refusal.
export function parseMermaidToExcalidraw(): Promise<never> {
  return Promise.reject(new Error('Mermaid diagrams are not available on this whiteboard'));
}
