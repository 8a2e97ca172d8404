// Measures the email document it is evaluated in (tests/browser.rs sends
// it to the frame that holds the email, called with the helpers of
// colours.js). One function expression; returns JSON.
(colours) => {
  const root = document.documentElement;
  const width = root.clientWidth;

  const { rgba, over, contrast, hex, dark, background } = colours();
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
}
