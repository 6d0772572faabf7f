// The iranker playground: a client of this server's own public API, and nothing else.
// It posts to /v2/rerank and /v1/route with return_trace: true and draws the trace: the final
// ranking, then every elimination step (the pool, each candidate's probability of being named
// worst when the ranker scores choices, the removed one). Text from the user or the model is
// only ever set as textContent, never parsed as HTML.
(function () {
  "use strict";

  var config = JSON.parse(document.getElementById("config").textContent);
  var demo = config.demo || {};
  var PLAY_MS = 1200;
  var STATUS = {
    400: "Bad request", 401: "Unauthorized", 404: "Not found", 413: "Over a server limit",
    422: "Invalid request", 500: "Server error", 502: "The backend failed", 503: "Server busy",
    504: "Timed out"
  };
  var TARGET_TAG = { passage: "most relevant", routing: "best choice", recommendation: "watched next" };

  var state = {
    tab: "passage",
    loaded: { passage: null, routing: null, recommendation: null },
    result: null,
    step: 0,
    timer: null,
    busyTimer: null
  };

  function $(id) { return document.getElementById(id); }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function textCell(item) {
    var span = el("span", "text");
    if (item.name) {
      span.appendChild(el("strong", "name", item.name));
      if (item.text) span.appendChild(document.createTextNode("  " + item.text));
    } else {
      span.textContent = item.text;
    }
    span.title = (item.name ? item.name + ": " : "") + item.text;
    return span;
  }

  function lines(text) {
    return text.split("\n").map(function (s) { return s.trim(); }).filter(Boolean);
  }

  function label(i) { return "[" + (i + 1) + "]"; }

  // -- server info and key ------------------------------------------------------------------
  function loadHealth() {
    fetch("/healthz", { cache: "no-store" }).then(function (r) {
      return r.json().then(function (j) { return { ok: r.ok, body: j }; });
    }).then(function (res) {
      var b = res.body || {};
      var text = $("server-text");
      text.textContent = "";
      text.appendChild(el("strong", null, b.model || "unknown model"));
      text.appendChild(document.createTextNode(" · " + (b.backend || "?") + " · " + (b.method || "?")));
      $("server-dot").className = "dot " + (res.ok ? "ok" : "down");
    }).catch(function () {
      $("server-text").textContent = "server unreachable";
      $("server-dot").className = "dot down";
    });
  }

  function apiKey() { return $("api-key").value.trim(); }

  // -- tabs ---------------------------------------------------------------------------------
  function selectTab(name) {
    state.tab = name;
    document.querySelectorAll(".tabs [role=tab]").forEach(function (b) {
      b.setAttribute("aria-selected", b.dataset.tab === name ? "true" : "false");
    });
    document.querySelectorAll(".panel").forEach(function (p) { p.hidden = p.dataset.panel !== name; });
  }

  // -- demo examples ------------------------------------------------------------------------
  function fillSelect(scenario) {
    var select = $(scenario + "-example");
    var items = demo[scenario] || [];
    select.appendChild(new Option(items.length ? "Choose a demo example…" : "No demo examples", ""));
    items.forEach(function (ex, i) {
      var title = ex.title.length > 70 ? ex.title.slice(0, 69) + "…" : ex.title;
      select.appendChild(new Option((i + 1) + ". " + title, String(i)));
    });
    select.addEventListener("change", function () {
      if (select.value !== "") loadExample(scenario, Number(select.value));
    });
    var note = (demo.notes || {})[scenario] || (demo.notes || {}).all;
    var noteEl = $(scenario + "-note");
    if (note && noteEl) { noteEl.textContent = note; noteEl.hidden = false; }
  }

  function remember(scenario, ex, keys) {
    var best = ex.best === null || ex.best === undefined ? null : keys[ex.best];
    var relevant = {};
    (ex.relevant || []).forEach(function (i) { relevant[keys[i]] = true; });
    state.loaded[scenario] = { best: best, relevant: relevant };
  }

  function loadExample(scenario, i) {
    var ex = demo[scenario][i];
    if (scenario === "passage") {
      $("passage-query").value = ex.query;
      $("passage-docs").value = ex.documents.join("\n");
      remember(scenario, ex, ex.documents);
    } else if (scenario === "routing") {
      $("routing-query").value = ex.query;
      $("routing-objective").value = ex.objective;
      $("routing-models").textContent = "";
      ex.models.forEach(addModelRow);
      remember(scenario, ex, ex.models.map(function (m) { return m.name; }));
    } else {
      $("recommendation-history").value = ex.history.join("\n");
      $("recommendation-docs").value = ex.documents.join("\n");
      $("recommendation-domain").value = ex.domain || "";
      remember(scenario, ex, ex.documents);
    }
  }

  function addModelRow(m) {
    m = m || {};
    var tr = el("tr");
    function cell(node) { var td = el("td"); td.appendChild(node); tr.appendChild(td); return node; }
    var name = cell(el("input", "m-name")); name.type = "text"; name.value = m.name || ""; name.placeholder = "name";
    var desc = cell(el("textarea", "m-desc")); desc.rows = 2; desc.value = m.description || "";
    desc.placeholder = "what it is good at";
    ["input_price", "output_price"].forEach(function (k) {
      var inp = cell(el("input", k === "input_price" ? "m-in" : "m-out"));
      inp.type = "text"; inp.inputMode = "decimal";
      inp.value = m[k] === undefined || m[k] === null ? "" : String(m[k]);
    });
    var rm = cell(el("button", "remove", "×")); rm.type = "button"; rm.title = "Remove this model";
    rm.addEventListener("click", function () { tr.remove(); });
    $("routing-models").appendChild(tr);
  }

  // -- requests -----------------------------------------------------------------------------
  function price(text) {
    var t = text.trim();
    if (t === "") return undefined;
    var n = Number(t);
    return isFinite(n) ? n : t;  // not a number: sent as typed, so the server names the field
  }

  function mark(scenario, key) {
    var loaded = state.loaded[scenario];
    if (!loaded) return null;
    if (loaded.best === key) return "target";
    return loaded.relevant[key] ? "relevant" : null;
  }

  function passageRequest() {
    var docs = lines($("passage-docs").value);
    return {
      scenario: "passage", path: "/v2/rerank",
      body: { query: $("passage-query").value, documents: docs, return_trace: true },
      items: docs.map(function (t, i) { return { id: String(i), label: label(i), text: t, mark: mark("passage", t) }; })
    };
  }

  function routingRequest() {
    var models = [];
    document.querySelectorAll("#routing-models tr").forEach(function (tr) {
      var m = { name: tr.querySelector(".m-name").value.trim(), description: tr.querySelector(".m-desc").value.trim() };
      var ip = price(tr.querySelector(".m-in").value), op = price(tr.querySelector(".m-out").value);
      if (ip !== undefined) m.input_price = ip;
      if (op !== undefined) m.output_price = op;
      models.push(m);
    });
    return {
      scenario: "routing", path: "/v1/route",
      body: { query: $("routing-query").value, objective: $("routing-objective").value, models: models, return_trace: true },
      items: models.map(function (m, i) {
        var prices = m.input_price !== undefined ? "  ($" + m.input_price + " / $" + (m.output_price !== undefined ? m.output_price : "?") + ")" : "";
        return { id: m.name, label: label(i), name: m.name, text: (m.description || "") + prices, mark: mark("routing", m.name) };
      })
    };
  }

  function recommendationRequest() {
    var docs = lines($("recommendation-docs").value);
    var body = { scenario: "recommendation", history: lines($("recommendation-history").value), documents: docs, return_trace: true };
    var domain = $("recommendation-domain").value.trim();
    if (domain) body.domain = domain;
    return {
      scenario: "recommendation", path: "/v2/rerank", body: body,
      items: docs.map(function (t, i) { return { id: String(i), label: label(i), text: t, mark: mark("recommendation", t) }; })
    };
  }

  var BUILDERS = { passage: passageRequest, routing: routingRequest, recommendation: recommendationRequest };

  function setBusy(on, startedAt) {
    document.querySelectorAll("button.primary").forEach(function (b) { b.disabled = on; });
    $("busy").hidden = !on;
    clearInterval(state.busyTimer);
    if (on) {
      var tick = function () {
        $("busy-text").textContent = "Ranking… " + ((performance.now() - startedAt) / 1000).toFixed(1) + " s";
      };
      tick();
      state.busyTimer = setInterval(tick, 200);
    }
  }

  function showError(title, detail) {
    stopPlay();
    $("error-title").textContent = title;
    $("error-detail").textContent = detail || "";
    $("error").hidden = false;
    $("result").hidden = true;
    $("placeholder").hidden = true;
    document.body.dataset.state = "error";
  }

  function errorDetail(data, fallback) {
    if (data && typeof data.detail === "string") return data.detail;
    if (data && data.message) return String(data.message);
    return fallback;
  }

  function submit(scenario) {
    var req = BUILDERS[scenario]();
    $("error").hidden = true;
    $("key-box").classList.remove("missing");
    if (config.auth && !apiKey()) {
      $("key-box").classList.add("missing");
      $("api-key").focus();
      showError("This server needs an API key", "Enter it in the API key field at the top; it is sent as 'Authorization: Bearer <key>'.");
      return;
    }
    stopPlay();
    var headers = { "Content-Type": "application/json" };
    if (apiKey()) headers.Authorization = "Bearer " + apiKey();
    var started = performance.now();
    var limitS = Math.ceil(config.timeout_s + 15);
    var controller = new AbortController();
    var timer = setTimeout(function () { controller.abort(); }, limitS * 1000);
    document.body.dataset.state = "loading";
    setBusy(true, started);
    fetch(req.path, { method: "POST", headers: headers, body: JSON.stringify(req.body), signal: controller.signal, cache: "no-store" })
      .then(function (resp) {
        return resp.text().then(function (text) {
          var data = null;
          try { data = JSON.parse(text); } catch (e) { data = null; }
          return { resp: resp, data: data, text: text };
        });
      })
      .then(function (r) {
        if (!r.resp.ok) {
          if (r.resp.status === 401) $("key-box").classList.add("missing");
          showError(r.resp.status + " · " + (STATUS[r.resp.status] || r.resp.statusText || "Error"),
                    errorDetail(r.data, r.text.slice(0, 500)));
          return;
        }
        if (!r.data || !r.data.results) {
          showError("Unexpected response", r.text.slice(0, 500));
          return;
        }
        render(req, r.data, (performance.now() - started) / 1000);
      })
      .catch(function (err) {
        if (err && err.name === "AbortError") {
          showError("No answer within " + limitS + " s", "The page gave up waiting; the server's own timeout is " + config.timeout_s + " s.");
        } else {
          showError("Could not reach the server", String(err && err.message || err));
        }
      })
      .then(function () { clearTimeout(timer); setBusy(false); });
  }

  // -- rendering ----------------------------------------------------------------------------
  function pill(text, strong, cls) {
    var p = el("span", "pill" + (cls ? " " + cls : ""));
    if (strong !== undefined) { p.appendChild(el("strong", null, strong)); p.appendChild(document.createTextNode(" ")); }
    p.appendChild(document.createTextNode(text));
    return p;
  }

  function tag(item, scenario) {
    if (!item.mark) return null;
    return item.mark === "target" ? el("span", "tag target", TARGET_TAG[scenario]) : el("span", "tag relevant", "relevant");
  }

  function render(req, data, seconds) {
    var byId = {};
    req.items.forEach(function (it) { byId[it.id] = it; });
    var trace = data.trace || { steps: [] };
    var steps = trace.steps || [];
    state.result = { req: req, data: data, byId: byId, steps: steps };

    var asked = $("asked");
    asked.textContent = "";
    if (req.scenario === "recommendation") {
      var hist = req.body.history || [];
      asked.appendChild(el("span", "k", "History"));
      asked.appendChild(document.createTextNode(hist.length + " items, most recent: " + (hist[hist.length - 1] || "none")));
    } else {
      asked.appendChild(el("span", "k", "Query"));
      asked.appendChild(document.createTextNode(req.body.query));
      if (req.scenario === "routing") asked.appendChild(el("span", "tag neutral", "objective: " + req.body.objective));
    }

    var summary = $("summary");
    summary.textContent = "";
    summary.appendChild(pill("candidates", req.items.length));
    summary.appendChild(pill(steps.length === 1 ? "elimination step" : "elimination steps", steps.length));
    summary.appendChild(pill("s", seconds.toFixed(2)));
    if (trace.method) summary.appendChild(pill(trace.method));
    if (data.meta && data.meta.tokens && data.meta.tokens.input_tokens > 0) {
      summary.appendChild(pill("prompt tokens", data.meta.tokens.input_tokens));
    }
    if (typeof trace.valid_rate === "number" && trace.valid_rate < 1) {
      summary.appendChild(pill("of answers named a candidate", Math.round(100 * trace.valid_rate) + "%", "warn"));
    }

    var ol = $("ranking");
    ol.textContent = "";
    data.results.forEach(function (res, pos) {
      var item = req.items[res.index];
      var li = el("li");
      li.dataset.index = String(res.index);
      li.appendChild(el("span", "pos", pos + 1));
      li.appendChild(el("span", "label", item.label));
      li.appendChild(textCell(item));
      li.appendChild(tag(item, req.scenario) || el("span"));
      var score = res.relevance_score !== undefined ? res.relevance_score : res.score;
      li.appendChild(el("span", "score", Number(score).toFixed(2)));
      ol.appendChild(li);
    });

    var timeline = $("timeline");
    timeline.textContent = "";
    steps.forEach(function (s, i) {
      var chip = el("button", "step-chip" + (s.valid ? "" : " invalid"));
      chip.type = "button";
      chip.setAttribute("role", "tab");
      chip.appendChild(el("span", "n", i + 1));
      chip.appendChild(document.createTextNode("✕ " + (byId[s.removed] ? byId[s.removed].label : s.removed)));
      chip.title = "Step " + (i + 1) + ": eliminates " + (byId[s.removed] ? byId[s.removed].text : s.removed);
      chip.addEventListener("click", function () { stopPlay(); showStep(i); });
      timeline.appendChild(chip);
    });
    $("controls").hidden = steps.length === 0;
    $("placeholder").hidden = true;
    $("error").hidden = true;
    $("result").hidden = false;
    if (steps.length) {
      showStep(0);
    } else {
      var box = $("step");
      box.textContent = "";
      box.appendChild(el("p", "no-probs", "This server ranks with " + (trace.method || "a one-call method") +
        ": the whole order comes from one answer, so there are no elimination steps to show."));
    }
    document.body.dataset.state = "done";
  }

  function howText(s) {
    if (s.how_matched === "choice") return "scored the labels in one forward pass (choice)";
    var t = "answer matched by " + s.how_matched;
    if (!s.valid) t = "no candidate named: " + s.how_matched;
    if (s.attempts > 1) t += " after " + s.attempts + " attempts";
    return t;
  }

  function showStep(i) {
    var r = state.result;
    if (!r || !r.steps.length) return;
    i = Math.max(0, Math.min(r.steps.length - 1, i));
    state.step = i;
    var s = r.steps[i];
    var box = $("step");
    box.textContent = "";
    var removed = r.byId[s.removed] || { label: s.removed, text: s.removed };

    var title = el("div", "step-title");
    var left = el("div");
    left.appendChild(el("strong", null, "Step " + (i + 1) + " of " + r.steps.length));
    left.appendChild(document.createTextNode("  ·  " + s.pool.length + " in the pool, " + removed.label + " eliminated"));
    title.appendChild(left);
    title.appendChild(el("span", "how", howText(s)));
    box.appendChild(title);

    var probs = Array.isArray(s.probs) && s.probs.length === s.pool.length ? s.probs : null;
    box.appendChild(el("p", "no-probs", probs
      ? "Bars: the probability of being named worst (softmax of the label log-probabilities over the pool)."
      : "This step was generated, so there is no probability per candidate; the model's reply is below."));
    var pool = el("div", "pool" + (probs ? "" : " no-bars"));
    s.pool.forEach(function (cid, j) {
      var item = r.byId[cid] || { label: cid, text: cid };
      var row = el("div", "cand" + (cid === s.removed ? " removed" : ""));
      row.dataset.id = cid;
      row.appendChild(el("span", "label", item.label));
      row.appendChild(textCell(item));
      var pct = el("span", "pct");
      if (probs) {
        var bar = el("div", "bar");
        var fill = el("div", "fill");
        fill.style.width = (100 * probs[j]).toFixed(1) + "%";
        bar.appendChild(fill);
        bar.title = "probability of being named worst";
        row.appendChild(bar);
        pct.textContent = (100 * probs[j]).toFixed(1) + "%";
      } else if (cid === s.removed) {
        pct.appendChild(el("span", "tag out", "out"));
      }
      row.appendChild(pct);
      pool.appendChild(row);
    });
    box.appendChild(pool);

    var gone = r.steps.slice(0, i).map(function (p) { return r.byId[p.removed] ? r.byId[p.removed].label : p.removed; });
    if (gone.length) {
      var g = el("div", "gone", "Eliminated before: ");
      gone.forEach(function (l) { g.appendChild(el("span", "label", l)); });
      box.appendChild(g);
    }
    if (s.how_matched !== "choice" && (s.thought || s.raw)) {
      var out = el("div", "model-output");
      if (s.thought) { out.appendChild(el("div", "k", "Thought")); out.appendChild(el("pre", null, s.thought)); }
      if (s.raw) { out.appendChild(el("div", "k", "Raw answer")); out.appendChild(el("pre", null, s.raw)); }
      box.appendChild(out);
    }

    document.querySelectorAll(".step-chip").forEach(function (c, k) {
      c.classList.toggle("current", k === i);
      c.classList.toggle("seen", k < i);
      c.setAttribute("aria-selected", k === i ? "true" : "false");
    });
    var last = r.steps.length - 1;
    $("step-first").disabled = $("step-prev").disabled = i === 0;
    $("step-last").disabled = $("step-next").disabled = i === last;
  }

  // -- playing ------------------------------------------------------------------------------
  function stopPlay() {
    if (state.timer) clearInterval(state.timer);
    state.timer = null;
    $("step-play").textContent = "Play";
    $("step-play").setAttribute("aria-label", "Play");
  }

  function togglePlay() {
    var r = state.result;
    if (!r || !r.steps.length) return;
    if (state.timer) { stopPlay(); return; }
    if (state.step >= r.steps.length - 1) showStep(0);
    $("step-play").textContent = "Pause";
    $("step-play").setAttribute("aria-label", "Pause");
    state.timer = setInterval(function () {
      showStep(state.step + 1);
      if (state.step >= r.steps.length - 1) stopPlay();
    }, PLAY_MS);
  }

  // -- wiring -------------------------------------------------------------------------------
  document.querySelectorAll(".tabs [role=tab]").forEach(function (b) {
    b.addEventListener("click", function () { selectTab(b.dataset.tab); });
  });
  ["passage", "routing", "recommendation"].forEach(function (scenario) {
    fillSelect(scenario);
    $("form-" + scenario).addEventListener("submit", function (ev) { ev.preventDefault(); submit(scenario); });
  });
  $("routing-add").addEventListener("click", function () { addModelRow({}); });
  $("step-first").addEventListener("click", function () { stopPlay(); showStep(0); });
  $("step-prev").addEventListener("click", function () { stopPlay(); showStep(state.step - 1); });
  $("step-next").addEventListener("click", function () { stopPlay(); showStep(state.step + 1); });
  $("step-last").addEventListener("click", function () { stopPlay(); showStep(Infinity); });
  $("step-play").addEventListener("click", togglePlay);
  document.addEventListener("keydown", function (ev) {
    var t = ev.target && ev.target.tagName;
    if (!state.result || t === "INPUT" || t === "TEXTAREA" || t === "SELECT") return;
    if (ev.key === "ArrowRight") { stopPlay(); showStep(state.step + 1); }
    if (ev.key === "ArrowLeft") { stopPlay(); showStep(state.step - 1); }
  });
  if (config.auth) $("key-box").hidden = false;
  for (var k = 0; k < 3; k++) addModelRow({});
  selectTab("passage");
  loadHealth();
  document.body.dataset.ready = "true";
})();
