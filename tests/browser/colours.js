// Colours and contrast (WCAG 2 relative luminance), shared by measure.js
// and clients.js: tests/browser.rs passes this function to theirs
// (`with_colours`). Called in the email's document, it reads the colour
// scheme then, and returns the helpers. One function expression.
() => {
  const root = document.documentElement;

  // A computed colour, `rgb(…)` or `rgba(…)`, as numbers.
  const rgba = (value) => {
    const m = /rgba?\(([^)]*)\)/.exec(value);
    if (!m) throw new Error(`cannot read the colour ${value}`);
    const [r, g, b, a = 1] = m[1].split(/[\s,/]+/).filter(Boolean).map(Number);
    return { r, g, b, a };
  };
  // `top` painted over `bottom` (which is opaque).
  const over = (top, bottom) => ({
    r: top.r * top.a + bottom.r * (1 - top.a),
    g: top.g * top.a + bottom.g * (1 - top.a),
    b: top.b * top.a + bottom.b * (1 - top.a),
    a: 1,
  });
  const luminance = ({ r, g, b }) => {
    const lin = (c) => {
      c /= 255;
      return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    };
    return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
  };
  // The contrast ratio of two opaque colours, unrounded.
  const contrast = (x, y) => {
    const [hi, lo] = [luminance(x), luminance(y)].sort((p, q) => q - p);
    return (hi + 0.05) / (lo + 0.05);
  };
  const hex = ({ r, g, b }) =>
    `#${[r, g, b].map((c) => Math.round(c).toString(16).padStart(2, "0")).join("")}`;

  const dark = matchMedia("(prefers-color-scheme: dark)").matches;
  // The canvas behind everything: dark only where the page allows it.
  const canvas =
    dark && getComputedStyle(root).colorScheme.includes("dark")
      ? { r: 18, g: 18, b: 18, a: 1 }
      : { r: 255, g: 255, b: 255, a: 1 };
  // What is painted under `element` (its own background included): the
  // background colours of it and its ancestors, composited from the first
  // opaque one up.
  const background = (element) => {
    const layers = [];
    for (let e = element; e; e = e.parentElement) {
      const c = rgba(getComputedStyle(e).backgroundColor);
      if (c.a > 0) layers.push(c);
      if (c.a >= 1) break;
    }
    let colour = canvas;
    for (const layer of layers.reverse()) colour = over(layer, colour);
    return colour;
  };

  return { rgba, over, contrast, hex, dark, background };
}
