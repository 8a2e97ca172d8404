// What mail clients' quirks do to the email, measured in the document it is
// evaluated in (tests/browser.rs sends it to the email's frame, called with
// the helpers of colours.js and `{ outlook }`). One function expression;
// returns JSON.
//
// `outlook: "word"` first does to the document what Outlook for Windows'
// Word engine does (caniemail: padding only on table cells, `display` only
// `none`, no `@media`), and lets cells take their `mso-padding-alt`, the
// padding Word reads; `outlook: "naive"` only strips the links' padding.
(colours, { outlook = null } = {}) => {
  const root = document.documentElement;

  if (outlook) {
    for (const a of document.querySelectorAll("a")) {
      a.style.setProperty("padding", "0", "important");
      if (outlook === "word") a.style.setProperty("display", "inline", "important");
    }
    if (outlook === "word") {
      for (const sheet of document.styleSheets) {
        for (let i = sheet.cssRules.length - 1; i >= 0; i--) {
          if (sheet.cssRules[i] instanceof CSSMediaRule) sheet.deleteRule(i);
        }
      }
      for (const td of document.querySelectorAll("td")) {
        const alt = /mso-padding-alt\s*:\s*([^;]+)/i.exec(td.getAttribute("style") || "");
        if (alt) td.style.setProperty("padding", alt[1].trim(), "important");
      }
    }
  }

  // Read after the changes above, as a mail app would paint them.
  const colour = colours();
  const { rgba, over, hex, dark, background } = colour;
  // Rounded to two decimals, as the tests report them.
  const contrast = (x, y) => Math.round(colour.contrast(x, y) * 100) / 100;
  const describe = (e) => {
    const cls = e.getAttribute("class");
    const text = e.textContent.replace(/\s+/g, " ").trim().slice(0, 40);
    return `<${e.tagName.toLowerCase()}${cls ? `.${cls.replace(/ /g, ".")}` : ""}> "${text}"`;
  };
  const card = document.querySelector(".card");

  // Rules: every visible border line in the card, against what it is drawn on.
  const rules = [];
  for (const e of card.querySelectorAll("*")) {
    const style = getComputedStyle(e);
    for (const side of ["top", "right", "bottom", "left"]) {
      const width = parseFloat(style.getPropertyValue(`border-${side}-width`));
      const kind = style.getPropertyValue(`border-${side}-style`);
      const colour = rgba(style.getPropertyValue(`border-${side}-color`));
      if (!(width > 0) || kind === "none" || kind === "hidden" || colour.a === 0) continue;
      const behind = background(e);
      const line = over(colour, behind);
      rules.push({
        element: describe(e),
        side,
        colour: hex(line),
        background: hex(behind),
        ratio: contrast(line, behind),
        // The edge of a filled component (the cards' date badge, the
        // booking button), not a divider: at least 3:1, but not "subtle".
        component: Boolean(e.closest(".badge, .book")),
      });
    }
  }

  // The button: the coloured cell (its edge against the card) and its link.
  const cell = document.querySelector("td.button");
  const link = cell && cell.querySelector(".button-link");
  const box = (e) => {
    const r = e.getBoundingClientRect();
    return { left: r.left, top: r.top, width: r.width, height: r.height };
  };
  const padding = (e) => {
    const s = getComputedStyle(e);
    return ["top", "right", "bottom", "left"].map((side) => parseFloat(s.getPropertyValue(`padding-${side}`)));
  };
  let button = null;
  if (cell && link) {
    const fill = background(cell);
    const around = background(cell.closest("table").parentElement);
    const style = getComputedStyle(cell);
    const border = parseFloat(style.borderTopWidth) > 0 ? over(rgba(style.borderTopColor), around) : fill;
    button = {
      cell: box(cell),
      link: box(link),
      cellPadding: padding(cell),
      linkPadding: padding(link),
      msoPaddingAlt: (/mso-padding-alt\s*:\s*([^;]+)/i.exec(cell.getAttribute("style") || "") || [])[1] || null,
      fill: hex(fill),
      around: hex(around),
      // The edge is wherever the fill (or a border) meets the card.
      edge: Math.max(contrast(fill, around), contrast(border, around)),
      textContrast: contrast(over(rgba(getComputedStyle(link).color), fill), fill),
    };
  }

  // Where text starts: the body's blocks in the card, and the footer's
  // paragraphs (those after the card, outside it).
  const textLeft = (e) => {
    const range = document.createRange();
    range.selectNodeContents(e);
    const rects = [...range.getClientRects()].filter((r) => r.width > 0);
    return rects.length ? Math.min(...rects.map((r) => r.left)) : NaN;
  };
  const visible = (e) => e.getBoundingClientRect().width > 0 && e.textContent.trim();
  const bodyBlocks = [...card.querySelectorAll("h1, h2, h3, p, li")].filter(visible);
  const footerBlocks = [...document.querySelectorAll("p")].filter(
    (p) =>
      visible(p) && !card.contains(p) && card.compareDocumentPosition(p) & Node.DOCUMENT_POSITION_FOLLOWING,
  );
  const edges = (blocks) =>
    blocks.map((e) => ({
      element: describe(e),
      left: Math.round(textLeft(e) * 100) / 100,
      // Quotes, lists and the post and event cards are indented on purpose.
      indented: Boolean(e.closest("blockquote, ul, ol, .item")),
    }));

  // The heading's words, line by line (JavaScript's \s includes U+00A0, so
  // words joined by a no-break space still count as two).
  const h1 = document.querySelector("h1");
  const words = [];
  const walker = document.createTreeWalker(h1, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    for (const m of node.textContent.matchAll(/\S+/g)) {
      const range = document.createRange();
      range.setStart(node, m.index);
      range.setEnd(node, m.index + m[0].length);
      words.push({ word: m[0], top: Math.round(range.getClientRects()[0].top) });
    }
  }
  const lines = [];
  for (const w of words) {
    if (!lines.length || Math.abs(lines[lines.length - 1].top - w.top) > 4) lines.push({ top: w.top, words: [] });
    lines[lines.length - 1].words.push(w.word);
  }

  return {
    dark,
    width: root.clientWidth,
    scrollWidth: root.scrollWidth,
    rules,
    button,
    body: edges(bodyBlocks),
    footer: edges(footerBlocks),
    heading: {
      text: h1.textContent,
      lines: lines.map((l) => l.words.join(" ")),
      right: h1.getBoundingClientRect().right,
    },
    title: document.title,
  };
}
