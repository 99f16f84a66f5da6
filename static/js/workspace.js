// The annotator workspace: keyboard choices, response classes, skip, time on item, the undo
// countdown.
// Everything here is an enhancement: the buttons and forms work without JavaScript.
(function () {
  "use strict";

  var shownAt = 0;        // performance.now() when the current item appeared
  var hiddenSince = null; // set while the tab is in the background
  var hiddenTotal = 0;    // background time, not counted as time spent
  var undoTimer = null;
  var pending = null;     // the choice button waiting for the response classes

  function workspace() { return document.getElementById("workspace"); }

  var SETTLE_MS = 250;

  function start() {
    pending = null;
    shownAt = performance.now();
    hiddenTotal = 0;
    hiddenSince = document.hidden ? shownAt : null;
    var ws = workspace();
    if (!ws) return;
    showClassStep();
    ws.querySelectorAll(".scroll").forEach(function (el) { el.scrollTop = 0; });
    startUndoCountdown(ws);
    // A new item takes keys and clicks only after a short pause: a double press or double
    // click must not label the next item, which nobody has looked at yet. It also leaves
    // htmx time to wire up the new form before anything can submit it.
    ws.removeAttribute("data-ready");
    ws.classList.add("settling");
    setTimeout(function () {
      ws.classList.remove("settling");
      ws.setAttribute("data-ready", "1");
    }, SETTLE_MS);
  }

  function ready() {
    var ws = workspace();
    return ws !== null && ws.getAttribute("data-ready") === "1";
  }

  function timeSpent() {
    var now = performance.now();
    var hidden = hiddenTotal + (hiddenSince !== null ? now - hiddenSince : 0);
    return Math.max(0, Math.round(now - shownAt - hidden));
  }

  function startUndoCountdown(ws) {
    if (undoTimer) { clearInterval(undoTimer); undoTimer = null; }
    var bar = ws.querySelector(".undo-bar");
    if (!bar) return;
    var left = parseInt(ws.getAttribute("data-undo-seconds") || "0", 10);
    var out = bar.querySelector(".undo-left");
    undoTimer = setInterval(function () {
      left -= 1;
      if (left <= 0) {
        clearInterval(undoTimer);
        undoTimer = null;
        bar.remove();
        return;
      }
      if (out) out.textContent = String(left);
    }, 1000);
  }

  function typing(target) {
    if (!target || !target.tagName) return false;
    var tag = target.tagName.toLowerCase();
    return tag === "textarea" || tag === "select" || target.isContentEditable ||
      (tag === "input" && !["radio", "checkbox", "button", "submit"].includes(target.type));
  }

  function busy(form) {
    return form.classList.contains("htmx-request") ||
      form.querySelector("button[disabled]") !== null;
  }

  function choose(key, clearly) {
    var form = document.getElementById("label-form");
    if (!form || busy(form)) return false;
    var button = form.querySelector('button.choice[data-key="' + key + '"]');
    if (!button) return false;
    if (clearly && (key === "1" || key === "2")) {
      var strong = form.querySelector('input[name="strength"][value="2"]');
      if (strong) strong.checked = true;
    }
    button.classList.add("pressed");
    // A real click, not form.requestSubmit(button): htmx learns the submitter (and so the
    // choice's name and value) from the click, exactly as with the mouse.
    button.click();
    return true;
  }

  // Response classes (audits that ask them): a choice waits until both responses have a
  // class. Keys fill the left response, then the right; Backspace takes the last one back.
  // Without JavaScript the radios and the choice buttons post the same form.
  var SIDES = ["left", "right"];

  function asksClasses(form) {
    return form !== null && form.getAttribute("data-ask-classes") === "1";
  }

  function classOf(form, side) {
    return form.querySelector('input[name="class_' + side + '"]:checked');
  }

  function classesComplete(form) {
    return SIDES.every(function (side) { return classOf(form, side) !== null; });
  }

  function showClassStep() {
    var form = document.getElementById("label-form");
    var out = document.getElementById("class-step");
    if (!asksClasses(form) || !out) return;
    var next = SIDES.filter(function (side) { return classOf(form, side) === null; })[0];
    form.querySelectorAll(".class-row").forEach(function (row) {
      row.classList.toggle("asking", pending !== null && row.getAttribute("data-side") === next);
    });
    if (pending === null) {
      out.textContent = "";
    } else if (next) {
      out.textContent = "Your choice: " + pending.textContent.replace(/^\s*\S+\s*/, "") +
        ". What did the " + next + " response do?";
    }
  }

  function giveClass(letter) {
    var form = document.getElementById("label-form");
    if (!asksClasses(form) || busy(form)) return false;
    var side = SIDES.filter(function (s) { return classOf(form, s) === null; })[0];
    if (!side) return false;
    var radio = form.querySelector(
      'input[name="class_' + side + '"][data-class-key="' + letter + '"]');
    if (!radio) return false;
    radio.checked = true;
    if (pending !== null && classesComplete(form)) {
      var button = pending;
      pending = null;
      button.click();
    }
    showClassStep();
    return true;
  }

  function takeClassBack() {
    var form = document.getElementById("label-form");
    if (!asksClasses(form)) return false;
    for (var i = SIDES.length - 1; i >= 0; i -= 1) {
      var radio = classOf(form, SIDES[i]);
      if (radio) { radio.checked = false; showClassStep(); return true; }
    }
    return false;
  }

  function cancelPending() {
    if (pending === null) return false;
    pending.classList.remove("pressed");
    pending = null;
    showClassStep();
    return true;
  }

  // A choice (key or click) in an audit that asks classes waits for them; capture runs
  // before htmx sees the click.
  document.addEventListener("click", function (event) {
    var button = event.target && event.target.closest ? event.target.closest("button.choice") : null;
    if (!button || !button.form || button.form.id !== "label-form") return;
    var form = button.form;
    if (!asksClasses(form) || classesComplete(form)) return;
    event.preventDefault();
    event.stopImmediatePropagation();
    if (pending) pending.classList.remove("pressed");
    pending = button;
    button.classList.add("pressed");
    showClassStep();
  }, true);

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target && target.name && /^class_/.test(target.name)) showClassStep();
  });

  // S opens the skip panel with its button focused; S (or Enter) again skips with the reason
  // shown, Escape goes back. Nothing is skipped by a single stray key.
  function skip() {
    var panel = document.getElementById("skip");
    var button = document.getElementById("skip-button");
    if (!panel || !button) return false;
    if (panel.open && document.activeElement === button) {
      var form = button.form;
      if (form && busy(form)) return true;
      button.click();
      return true;
    }
    panel.open = true;
    button.focus();
    return true;
  }

  function closeSkip() {
    var panel = document.getElementById("skip");
    if (!panel || !panel.open) return false;
    panel.open = false;
    if (document.activeElement && panel.contains(document.activeElement)) {
      document.activeElement.blur();
    }
    return true;
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
    if (typing(event.target)) {
      // Escape leaves a text field, so the choice keys work again without the mouse.
      if (event.key === "Escape" && event.target.closest("#workspace")) event.target.blur();
      return;
    }
    if (event.key === "Escape") {
      if (closeSkip() || cancelPending()) event.preventDefault();
      return;
    }
    var digit = /^(Digit|Numpad)([0-3])$/.exec(event.code || "");
    var key = digit ? digit[2] : event.key;
    var handled = false;
    if (!ready()) return;
    if (key === "1" || key === "2" || key === "3" || key === "0") {
      handled = choose(key, event.shiftKey);
    } else if (key === "u" || key === "U") {
      var undo = document.querySelector('.undo-bar button[data-action="undo"]');
      if (undo) { undo.click(); handled = true; }
    } else if (key === "g" || key === "G") {
      var guide = document.getElementById("guidelines");
      if (guide) { guide.open = !guide.open; handled = true; }
    } else if (key === "s" || key === "S") {
      handled = skip();
    } else if (key === "Backspace") {
      handled = takeClassBack();
    } else if (/^[arcelARCEL]$/.test(key)) {
      handled = giveClass(key.toLowerCase());
    }
    if (handled) event.preventDefault();
  });

  // Fill the time spent just before the form is serialised (capture runs before htmx).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form && form.id === "label-form") {
      var field = form.querySelector('input[name="time_spent_ms"]');
      if (field) field.value = String(timeSpent());
    }
  }, true);

  document.addEventListener("visibilitychange", function () {
    var now = performance.now();
    if (document.hidden) {
      hiddenSince = now;
    } else if (hiddenSince !== null) {
      hiddenTotal += now - hiddenSince;
      hiddenSince = null;
    }
  });

  // A swap replaces #workspace itself (outerHTML), so listen on the document for the new one.
  document.addEventListener("htmx:load", function (event) {
    if (event.detail && event.detail.elt && event.detail.elt.id === "workspace") start();
  });

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
