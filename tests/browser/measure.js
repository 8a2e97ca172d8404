// Measures the email document it is evaluated in (tests/browser.rs sends
// it to the frame that holds the email). One expression; returns JSON.
(() => {
  const root = document.documentElement;
  const width = root.clientWidth;

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
  // The colour the element's text is drawn on: the background colours of
  // it and its ancestors, composited from the first opaque one up.
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
  const shown = (e) =>
    e.checkVisibility({ checkOpacity: true, checkVisibilityCSS: true }) &&
    e.getBoundingClientRect().width > 0 &&
    e.getBoundingClientRect().height > 0;
  const ownText = (e) =>
    [...e.childNodes]
      .filter((n) => n.nodeType === Node.TEXT_NODE)
      .map((n) => n.textContent)
      .join("")
      .replace(/\s+/g, " ")
      .trim();
  const describe = (e) => {
    const cls = e.getAttribute("class");
    const text = (ownText(e) || e.textContent.replace(/\s+/g, " ").trim()).slice(0, 50);
    return `<${e.tagName.toLowerCase()}${cls ? `.${cls.replace(/ /g, ".")}` : ""}> "${text}"`;
  };
  const all = [...document.body.querySelectorAll("*")];

  // Contrast of every element that draws text of its own.
  const texts = all
    .filter((e) => ownText(e) && shown(e))
    .map((e) => {
      const style = getComputedStyle(e);
      const bg = background(e);
      const fg = over(rgba(style.color), bg);
      return {
        element: describe(e),
        colour: hex(fg),
        background: hex(bg),
        ratio: Math.round(contrast(fg, bg) * 100) / 100,
      };
    });

  // Paragraph text: in the card, and in the footer below it.
  const card = document.querySelector(".card");
  const paragraphs = [...document.querySelectorAll("p, li")]
    .filter((e) => shown(e) && e.textContent.trim())
    .map((e) => ({
      element: describe(e),
      inCard: card ? card.contains(e) : true,
      size: parseFloat(getComputedStyle(e).fontSize),
    }));

  const images = [...document.images].map((img) => {
    const r = img.getBoundingClientRect();
    return {
      src: img.getAttribute("src"),
      alt: img.getAttribute("alt"),
      loaded: img.complete && img.naturalWidth > 0,
      naturalWidth: img.naturalWidth,
      left: r.left,
      right: r.right,
      width: r.width,
    };
  });

  const button = document.querySelector("a.button-link");
  const box = button && button.getBoundingClientRect();

  // Accessibility of the markup.
  const headings = [...document.querySelectorAll("h1, h2, h3, h4, h5, h6")].map((h) => ({
    level: Number(h.tagName[1]),
    text: h.textContent.replace(/\s+/g, " ").trim().slice(0, 50),
  }));
  const links = [...document.querySelectorAll("a[href]")].map((a) => ({
    text: (a.innerText || a.getAttribute("aria-label") || "").replace(/\s+/g, " ").trim(),
    href: a.getAttribute("href"),
  }));

  return {
    width,
    innerWidth: window.innerWidth,
    scrollWidth: Math.max(root.scrollWidth, document.body.scrollWidth),
    // Anything drawn past the right edge, even where overflow hides it.
    widest: all
      .filter(shown)
      .map((e) => ({ element: describe(e), right: e.getBoundingClientRect().right }))
      .sort((a, b) => b.right - a.right)[0],
    dark,
    texts,
    paragraphs,
    images,
    button: box && {
      text: button.textContent.trim(),
      top: box.top,
      left: box.left,
      right: box.right,
      width: box.width,
      height: box.height,
    },
    lang: root.getAttribute("lang"),
    title: document.title,
    tablesWithoutRole: [...document.querySelectorAll("table")].filter(
      (t) => t.getAttribute("role") !== "presentation",
    ).length,
    tables: document.querySelectorAll("table").length,
    headings,
    imagesWithoutAlt: [...document.images].filter((i) => !i.hasAttribute("alt")).map((i) => i.src),
    links,
  };
})()
