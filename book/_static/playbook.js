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
  markCallouts();
  setUpDirectoryFilter();
  labelReflowCells();
  linkChartsAtFullSize();
  reachScrollBoxesByKeyboard();
});

// A chart shrinks to fit a narrow column (a phone), and its text shrinks with it. Under
// each chart shown smaller than its own size, a link opens the chart on its own, at full
// size, where it can be read and zoomed.
function linkChartsAtFullSize() {
  const charts = document.querySelectorAll('.bd-article .cell_output img[src$=".svg"]');
  const links = [];
  charts.forEach((chart) => {
    const line = document.createElement("p");
    line.className = "chart-full-size";
    const link = document.createElement("a");
    link.href = chart.getAttribute("src");
    link.textContent = "Open this chart at full size";
    line.appendChild(link);
    line.hidden = true;
    chart.insertAdjacentElement("afterend", line);
    links.push([chart, line]);
  });
  const update = () => {
    links.forEach(([chart, line]) => {
      line.hidden = !(chart.naturalWidth && chart.clientWidth < chart.naturalWidth - 1);
    });
  };
  update();
  charts.forEach((chart) => chart.addEventListener("load", update));
  window.addEventListener("load", update);
  window.addEventListener("resize", update);
}

// A chart or table wider than the column scrolls sideways inside its own box (on a phone,
// mostly). Such a box can be reached with the Tab key and is named, so people who do not
// use a mouse or touch can scroll it too (WCAG 2.1.1).
function reachScrollBoxesByKeyboard() {
  const boxes = document.querySelectorAll(".bd-article .cell_output");
  const update = () => {
    boxes.forEach((box) => {
      if (box.scrollWidth > box.clientWidth + 1) {
        box.setAttribute("tabindex", "0");
        box.setAttribute("role", "region");
        box.setAttribute("aria-label", "Wide output: scroll sideways to see all of it");
      } else if (box.getAttribute("role") === "region") {
        box.removeAttribute("tabindex");
        box.removeAttribute("role");
        box.removeAttribute("aria-label");
      }
    });
  };
  update();
  // Charts take their size when they load; a phone can turn sideways.
  window.addEventListener("load", update);
  window.addEventListener("resize", update);
}

// On a phone, a table marked `reflow-table` shows each row as a small card. Each cell
// carries its column's name, which the stylesheet writes in front of the cell.
function labelReflowCells() {
  document.querySelectorAll("table.reflow-table").forEach((table) => {
    const names = Array.from(table.querySelectorAll("thead th")).map((th) => th.textContent.trim());
    table.querySelectorAll("tbody tr").forEach((row) => {
      Array.from(row.children).forEach((cell, column) => {
        if (names[column]) cell.setAttribute("data-label", names[column]);
      });
    });
  });
}

// Give every "Key question" and "Try it with data" callout its own style, even
// where a page (such as a notebook) does not set the class itself.
function markCallouts() {
  const kinds = [
    [/^key question/i, "key-question"],
    [/^try it with data/i, "try-it"],
  ];
  document.querySelectorAll("div.admonition > .admonition-title").forEach((title) => {
    for (const [pattern, kind] of kinds) {
      if (pattern.test(title.textContent.trim())) {
        title.parentElement.classList.add(kind);
      }
    }
  });
}

// The filter on the "Local contacts and resources" page. Without JavaScript
// the form stays hidden and every card shows.
function setUpDirectoryFilter() {
  const form = document.querySelector("form.directory-filter");
  if (!form) return;
  const entries = Array.from(document.querySelectorAll(".directory-entry"));
  const area = form.querySelector("#directory-area");
  const need = form.querySelector("#directory-need");
  const words = form.querySelector("#directory-words");
  const count = form.querySelector(".directory-count");
  const sections = Array.from(document.querySelectorAll("section")).filter(
    (section) => section.querySelector(".directory-entry") && !section.contains(form),
  );

  // An entry for the whole county covers every district, but not the city.
  const coversArea = (entry, key) => {
    if (!key) return true;
    const classes = entry.classList;
    if (classes.contains(`covers-${key}`) || classes.contains("covers-england")) return true;
    return key !== "derby" && classes.contains("covers-derbyshire");
  };

  const update = () => {
    const terms = words.value.toLowerCase().split(/\s+/).filter(Boolean);
    let shown = 0;
    for (const entry of entries) {
      const text = entry.textContent.toLowerCase();
      const wanted =
        coversArea(entry, area.value) &&
        (!need.value || entry.classList.contains(`need-${need.value}`)) &&
        terms.every((term) => text.includes(term));
      entry.hidden = !wanted;
      if (wanted) shown += 1;
    }
    for (const section of sections) {
      section.hidden = !section.querySelector(".directory-entry:not([hidden])");
    }
    count.textContent =
      shown === entries.length
        ? `Showing all ${entries.length} entries.`
        : `Showing ${shown} of ${entries.length} entries.`;
  };

  form.addEventListener("input", update);
  form.addEventListener("change", update);
  form.addEventListener("submit", (event) => event.preventDefault());
  form.hidden = false;
  update();
}
