// Report pages: sortable tables and collapsible sections (see the end). Progressive enhancement: without JavaScript the tables are
// plain tables in their server order. A header with data-sort="num" or "text" becomes a
// button; cells give their sort key in data-value (empty = undefined, always sorted last).
// The chosen order survives the htmx refresh of the figures.
(function () {
  "use strict";

  var chosen = {}; // table id -> {column, descending}

  // The last header row names every column (an upper row may group them).
  function headerRow(table) { return table.tHead.rows[table.tHead.rows.length - 1]; }

  function key(cell, numeric) {
    var raw = cell ? cell.getAttribute("data-value") : null;
    if (raw === null) raw = cell ? cell.textContent.trim() : "";
    if (numeric) {
      var number = parseFloat(raw);
      return isNaN(number) ? null : number;
    }
    return raw === "" ? null : raw.toLowerCase();
  }

  function sort(table, column, descending) {
    var header = headerRow(table).cells[column];
    var numeric = header.getAttribute("data-sort") === "num";
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a.cells[column], numeric);
      var y = key(b.cells[column], numeric);
      if (x === null && y === null) return 0;
      if (x === null) return 1;
      if (y === null) return -1;
      var order = x < y ? -1 : x > y ? 1 : 0;
      return descending ? -order : order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
    Array.prototype.forEach.call(headerRow(table).cells, function (th, index) {
      if (!th.hasAttribute("data-sort")) return;
      th.setAttribute("aria-sort", index === column ? (descending ? "descending" : "ascending") : "none");
    });
  }

  function enhance(root) {
    root.querySelectorAll("table.sortable").forEach(function (table) {
      if (!table.tHead || table.getAttribute("data-enhanced")) return;
      table.setAttribute("data-enhanced", "1");
      Array.prototype.forEach.call(headerRow(table).cells, function (th, index) {
        if (!th.hasAttribute("data-sort")) return;
        var button = document.createElement("button");
        button.type = "button";
        button.className = "link";
        button.title = "Sort by this column";
        while (th.firstChild) button.appendChild(th.firstChild);
        th.appendChild(button);
        th.setAttribute("aria-sort", "none");
        button.addEventListener("click", function () {
          var previous = chosen[table.id];
          var descending = previous && previous.column === index ? !previous.descending
            : th.getAttribute("data-sort") === "num";
          chosen[table.id] = { column: index, descending: descending };
          sort(table, index, descending);
        });
      });
      var order = chosen[table.id];
      if (order) sort(table, order.column, order.descending);
    });
  }

  // Collapsible sections (<details data-section>): they open and close without JavaScript;
  // here a link to a section (the contents, a finding, the address's #fragment) opens it,
  // "Open/Close every section" does what it says, and what the reader opened or closed
  // survives the htmx refresh of the figures.
  var sections = {}; // data-section -> open (true/false), as the reader left it

  function sectionFor(id) {
    var target = id && document.getElementById(id);
    if (!target) return null;
    return target.matches("details[data-section]") ? target : target.querySelector("details[data-section]");
  }

  function reveal(id) {
    var details = sectionFor(id);
    if (details && !details.open) {
      details.open = true;
      sections[details.getAttribute("data-section")] = true;
    }
  }

  function restore(root) {
    root.querySelectorAll("details[data-section]").forEach(function (details) {
      var name = details.getAttribute("data-section");
      if (Object.prototype.hasOwnProperty.call(sections, name)) details.open = sections[name];
    });
  }

  document.addEventListener("click", function (event) {
    // The reader's own choice (a click, or Enter/Space, on a section's summary), recorded
    // here rather than on "toggle": new content fires toggle events of its own.
    var summary = event.target.closest ? event.target.closest("summary") : null;
    var owner = summary && summary.parentElement;
    if (owner && owner.matches("details[data-section]") && owner.firstElementChild === summary) {
      sections[owner.getAttribute("data-section")] = !owner.open; // the state after this click
    }
    var link = event.target.closest ? event.target.closest('a[href^="#"]') : null;
    if (link) reveal(link.getAttribute("href").slice(1));
    var all = event.target.closest ? event.target.closest("button[data-sections]") : null;
    if (all) {
      var open = all.getAttribute("data-sections") === "open";
      document.querySelectorAll("details[data-section]").forEach(function (details) {
        details.open = open;
        sections[details.getAttribute("data-section")] = open;
      });
    }
  });

  window.addEventListener("hashchange", function () { reveal(window.location.hash.slice(1)); });

  document.addEventListener("DOMContentLoaded", function () {
    enhance(document);
    if (window.location.hash) {
      reveal(window.location.hash.slice(1));
      var target = document.getElementById(window.location.hash.slice(1));
      if (target) target.scrollIntoView();
    }
  });
  document.addEventListener("htmx:load", function (event) { enhance(event.target); restore(event.target); });
})();
