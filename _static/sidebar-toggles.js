/**
 * Make every sidebar toggle button work.
 *
 * pydata-sphinx-theme 0.17 binds its sidebar handlers to the first `.primary-toggle`
 * and `.secondary-toggle` on the page only (pydata-sphinx-theme #2451). With
 * sphinx-book-theme 1.3 the first ones sit in the theme's hidden top bar, so the
 * visible buttons in the article header do nothing at phone width
 * (sphinx-book-theme #988). Each further button forwards its click to the first
 * one, which opens the sidebar (narrow screens) or collapses it (wide ones).
 */
document.addEventListener("DOMContentLoaded", () => {
  [".primary-toggle", ".secondary-toggle"].forEach((selector) => {
    const [bound, ...others] = document.querySelectorAll(selector);
    others.forEach((button) => {
      button.addEventListener("click", (event) => {
        event.preventDefault();
        event.stopPropagation();
        bound.click();
      });
    });
  });
});
