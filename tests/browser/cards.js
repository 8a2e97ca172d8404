// Measures the post and event cards of the email it is evaluated in
// (tests/browser.rs, `cards_fit_every_width`). One expression; returns JSON.
(() => {
  const box = (e) => {
    const r = e.getBoundingClientRect();
    return { left: r.left, right: r.right, top: r.top, bottom: r.bottom, width: r.width, height: r.height };
  };
  const name = (e) => e.textContent.replace(/\s+/g, " ").trim().slice(0, 40);
  const cards = [...document.querySelectorAll("table.item")].map((card) => {
    const outer = box(card);
    // Anything drawn past the card's edges.
    const outside = [...card.querySelectorAll("*")]
      .filter((e) => {
        const r = e.getBoundingClientRect();
        return r.width > 0 && (r.right > outer.right + 0.5 || r.left < outer.left - 0.5);
      })
      .map((e) => `<${e.tagName.toLowerCase()}> "${name(e)}"`);
    const img = card.querySelector("img");
    const columns = img ? [...img.closest("td").children].filter((e) => e.tagName === "DIV") : [];
    const book = card.querySelector("td.book");
    const badge = card.querySelector("td.badge");
    return {
      title: name(card.querySelector("h3")),
      box: outer,
      outside,
      thumbnail: img && { ...box(img), loaded: img.complete && img.naturalWidth > 0 },
      columns: columns.map(box),
      badge: badge && box(badge),
      book: book && box(book),
    };
  });
  // Screen-reader words: each must take no more than a pixel.
  const hidden = [...document.querySelectorAll("table.item a span")].map((s) => ({
    text: s.textContent,
    ...box(s),
  }));
  return { width: document.documentElement.clientWidth, cards, hidden };
})()
