// Give the sidebar's expand/collapse toggles an accessible name (WCAG 4.1.2):
// the theme draws them as an icon only, which screen readers announce as nothing.
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("nav summary").forEach((summary) => {
    if (!summary.textContent.trim() && !summary.getAttribute("aria-label")) {
      const link = summary.parentElement?.parentElement?.querySelector(":scope > a");
      const name = link ? link.textContent.trim() : "this section";
      summary.setAttribute("aria-label", `Show or hide the pages in ${name}`);
    }
  });
});
