/* The LINE simulator page: plain JS, no build step, no external resources.
 *
 * Everything the bot sent is rendered with DOM nodes and textContent, never innerHTML:
 * message content is untrusted. URLs from messages are checked before use.
 */
(function () {
  "use strict";

  // -- small helpers ---------------------------------------------------------------------

  function el(tag, attrs) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        var v = attrs[k];
        if (v === null || v === undefined || v === false) return;
        if (k === "class") node.className = v;
        else if (k === "text") node.textContent = String(v);
        else if (k === "style") Object.assign(node.style, v);
        else if (k === "dataset") Object.assign(node.dataset, v);
        else if (k.slice(0, 2) === "on") node.addEventListener(k.slice(2), v);
        else node.setAttribute(k, v === true ? "" : String(v));
      });
    }
    for (var i = 2; i < arguments.length; i++) append(node, arguments[i]);
    return node;
  }

  function append(node, child) {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) child.forEach(function (c) { append(node, c); });
    else node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }

  /** Thai first, English beneath. */
  function bi(th, en, cls) {
    return el("span", { class: "bi" + (cls ? " " + cls : "") }, el("span", { text: th }), el("small", { text: en }));
  }

  var ICONS = {
    office: "M12 2 2 7v2h20V7L12 2zm-7 9v7H3v3h18v-3h-2v-7h-3v7h-2.5v-7h-3v7H8v-7H5z",
    photo: "M21 19V5a2 2 0 0 0-2-2H5a2 2 0 0 0-2 2v14a2 2 0 0 0 2 2h14a2 2 0 0 0 2-2zM8.5 13.5l2.5 3 3.5-4.5 4.5 6H5l3.5-4.5z",
    file: "M14 2H6a2 2 0 0 0-2 2v16a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2V8l-6-6zm-1 7V3.5L18.5 9H13z",
    pin: "M12 2a7 7 0 0 0-7 7c0 5.2 7 13 7 13s7-7.8 7-13a7 7 0 0 0-7-7zm0 9.5A2.5 2.5 0 1 1 12 6.5a2.5 2.5 0 0 1 0 5z",
    video: "M17 10.5V7a1 1 0 0 0-1-1H4a1 1 0 0 0-1 1v10a1 1 0 0 0 1 1h12a1 1 0 0 0 1-1v-3.5l4 4v-11l-4 4z",
    mic: "M12 14a3 3 0 0 0 3-3V5a3 3 0 0 0-6 0v6a3 3 0 0 0 3 3zm5.3-3a5.3 5.3 0 0 1-10.6 0H5c0 3.4 2.7 6.2 6 6.7V21h2v-3.3c3.3-.5 6-3.3 6-6.7h-1.7z",
  };

  /** A small inline SVG icon (built with DOM calls: fixed paths, no message content). */
  function svgIcon(name, size) {
    var NS = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(NS, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("width", String(size || 20));
    svg.setAttribute("height", String(size || 20));
    svg.setAttribute("aria-hidden", "true");
    var path = document.createElementNS(NS, "path");
    path.setAttribute("fill", "currentColor");
    path.setAttribute("d", ICONS[name] || ICONS.file);
    svg.append(path);
    return svg;
  }

  function isObj(x) { return x !== null && typeof x === "object" && !Array.isArray(x); }
  function str(x) { return typeof x === "string" ? x : x === undefined || x === null ? "" : String(x); }

  /** An image/link URL from a message, or null: http(s) and same-origin paths only. */
  function safeUrl(raw, schemes) {
    if (typeof raw !== "string" || !raw) return null;
    try {
      var u = new URL(raw, window.location.href);
      var ok = schemes || ["http:", "https:"];
      return ok.indexOf(u.protocol) >= 0 ? u.href : null;
    } catch (e) {
      return null;
    }
  }

  function cssSize(v) {
    return typeof v === "string" && /^\d+(\.\d+)?(px|%)$/.test(v) ? v : null;
  }

  function cssColor(v) {
    return typeof v === "string" && /^#[0-9a-fA-F]{3,8}$/.test(v) ? v : null;
  }

  function randomUserId() {
    var bytes = new Uint8Array(16);
    (window.crypto || window.msCrypto).getRandomValues(bytes);
    return "U" + Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  function timeOf(iso) {
    var d = new Date(iso);
    if (isNaN(d.getTime())) return "";
    return ("0" + d.getHours()).slice(-2) + ":" + ("0" + d.getMinutes()).slice(-2);
  }

  var toastTimer = null;
  function toast(th, en) {
    var t = document.getElementById("toast");
    t.replaceChildren(en ? bi(th, en) : el("span", { text: th }));
    t.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(function () { t.hidden = true; }, 3500);
  }

  // -- stored users ----------------------------------------------------------------------

  var STORE_KEY = "itabot.simulator.v1";
  var memoryStore = null;

  function loadStore() {
    var data = null;
    try { data = JSON.parse(window.localStorage.getItem(STORE_KEY) || "null"); } catch (e) { data = memoryStore; }
    if (!isObj(data)) data = {};
    if (!Array.isArray(data.users)) data.users = [];
    data.users = data.users.filter(function (u) {
      return isObj(u) && typeof u.id === "string" && /^U[0-9a-f]{32}$/.test(u.id) && typeof u.name === "string";
    });
    return data;
  }

  function saveStore() {
    memoryStore = store;
    try { window.localStorage.setItem(STORE_KEY, JSON.stringify(store)); } catch (e) { /* private mode */ }
  }

  function newUser() {
    var n = store.users.reduce(function (m, u) { return Math.max(m, u.n || 0); }, 0) + 1;
    var user = { id: randomUserId(), name: "ผู้ใช้ " + n, n: n };
    store.users.push(user);
    store.current = user.id;
    saveStore();
    return user;
  }

  // -- state -----------------------------------------------------------------------------

  var offices = [];
  try { offices = JSON.parse(document.getElementById("sim-offices").textContent) || []; } catch (e) { offices = []; }
  var store = loadStore();

  var S = {
    office: null,       // {slug, name}
    user: null,         // {id, name}
    gen: 0,             // bumped on every chat switch; stale responses are dropped
    lastId: 0,
    inflight: false,
    loaded: false,
    following: null,
    lang: "th",
    lastMsg: null,      // the newest message rendered
    lastRow: null,      // {dir, el} of the newest row, to group bot messages like LINE
    byMessageId: {},    // user's message id → its row, for unsend
    typingUntil: 0,
    richmenuKey: "",
  };

  var $log = document.getElementById("log");
  var $quick = document.getElementById("quick");
  var $text = document.getElementById("text");
  var $officeSel = document.getElementById("office");
  var $userSel = document.getElementById("user");
  var $follow = document.getElementById("toggle-follow");

  function api(path) {
    return "/simulator/api/" + encodeURIComponent(S.office.slug) + path;
  }

  // -- choosing the office and user ------------------------------------------------------

  function fillOffices() {
    $officeSel.replaceChildren();
    offices.forEach(function (o) {
      $officeSel.append(el("option", { value: o.slug, text: o.name }));
    });
    document.getElementById("office-field").hidden = offices.length < 2;
    var wanted = offices.filter(function (o) { return o.slug === store.office; })[0];
    S.office = wanted || offices[0] || null;
    if (S.office) $officeSel.value = S.office.slug;
  }

  function fillUsers() {
    $userSel.replaceChildren();
    store.users.forEach(function (u) {
      $userSel.append(el("option", { value: u.id, text: u.name + " · " + u.id.slice(0, 7) + "…" }));
    });
    $userSel.value = S.user ? S.user.id : "";
  }

  function currentUser() {
    var u = store.users.filter(function (x) { return x.id === store.current; })[0];
    if (!u) u = store.users[0] || newUser();
    store.current = u.id;
    saveStore();
    return u;
  }

  function switchChat() {
    S.gen += 1;
    S.user = currentUser();
    S.lastId = 0;
    S.loaded = false;
    S.following = null;
    S.lastMsg = null;
    S.lastRow = null;
    S.byMessageId = {};
    S.typingUntil = 0;
    S.lang = "th";
    S.richmenuKey = "";
    fillUsers();
    document.getElementById("user-id").textContent = S.user.id;
    document.getElementById("office-name").textContent = S.office ? S.office.name : "";
    $log.replaceChildren();
    renderQuick(null);
    updateFollowUi();
    updateLangUi();
    if (!S.office) {
      $log.append(el("div", { class: "sys" }, bi(
        "ไม่มีหน่วยงานที่ใช้ตัวจำลองได้ (ทุกหน่วยงานเชื่อมกับ LINE จริงแล้ว)",
        "No office uses the simulator: every office is connected to a real LINE channel")));
      return;
    }
    loadRichMenu();
    poll();
  }

  // -- polling ---------------------------------------------------------------------------

  function setConn(ok) {
    var c = document.getElementById("conn");
    if (ok) { c.replaceChildren(); c.classList.remove("bad"); }
    else { c.replaceChildren(bi("ออฟไลน์", "offline")); c.classList.add("bad"); }
  }

  function poll() {
    if (!S.office || S.inflight) return Promise.resolve();
    S.inflight = true;
    var gen = S.gen;
    var url = api("/messages?user=" + encodeURIComponent(S.user.id) + "&after=" + S.lastId);
    return fetch(url, { cache: "no-store" })
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.json();
      })
      .then(function (body) {
        if (gen !== S.gen) return false;
        setConn(true);
        var msgs = Array.isArray(body.messages) ? body.messages : [];
        var nearBottom = $log.scrollHeight - $log.scrollTop - $log.clientHeight < 120;
        var sawBot = false;
        msgs.forEach(function (m) {
          if (typeof m.id === "number" && m.id <= S.lastId) return;
          try { addMessage(m); } catch (e) { console.error("could not render message", m, e); }
          if (m.direction === "out") sawBot = true;
          if (typeof m.id === "number") S.lastId = Math.max(S.lastId, m.id);
        });
        if (sawBot) S.typingUntil = 0;
        var lang = body.language === "en" ? "en" : "th";
        if (lang !== S.lang) { S.lang = lang; updateLangUi(); loadRichMenu(); }
        if (msgs.length || !S.loaded) {
          if (!S.loaded) { S.loaded = true; if (S.following === null) S.following = false; }
          afterBatch(nearBottom || !msgs.length || msgs.some(function (m) { return m.direction === "in"; }));
        }
        return msgs.length >= 200; // more to fetch
      })
      .catch(function (e) {
        if (gen === S.gen) setConn(false);
        return false;
      })
      .finally(function () {
        S.inflight = false;
      })
      .then(function (more) {
        if (more || gen !== S.gen) return poll();
      });
  }

  function loop() {
    poll().finally(function () {
      renderTyping();
      setTimeout(loop, document.hidden ? 3000 : 700);
    });
  }

  // -- sending ---------------------------------------------------------------------------

  function sendEvent(ev) {
    if (!S.office || !S.user) return Promise.resolve(false);
    var body = Object.assign({ user: S.user.id }, ev);
    renderQuick(null);
    if (ev.type !== "unfollow" && ev.type !== "unsend") {
      S.typingUntil = Date.now() + 8000;
      renderTyping();
    }
    var gen = S.gen;
    return fetch(api("/events"), {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    })
      .then(function (r) {
        if (!r.ok) {
          S.typingUntil = 0;
          toast("ส่งไม่สำเร็จ (HTTP " + r.status + ")", "Could not send (HTTP " + r.status + ")");
          return false;
        }
        return r.json().then(function (j) {
          if (j.webhook_status !== 200) {
            toast("เว็บฮุกตอบกลับ " + j.webhook_status, "The webhook answered " + j.webhook_status);
          }
          return true;
        });
      })
      .catch(function () {
        S.typingUntil = 0;
        toast("เชื่อมต่อเซิร์ฟเวอร์ไม่ได้", "Cannot reach the server");
        return false;
      })
      .then(function (ok) {
        if (gen === S.gen) poll();
        return ok;
      });
  }

  function sendText() {
    var text = $text.value;
    if (!text.trim()) return;
    $text.value = "";
    autosize();
    sendEvent({ type: "text", text: text });
  }

  // -- actions (quick replies, buttons, rich menu) -------------------------------------

  function doAction(a) {
    if (!isObj(a)) return;
    switch (a.type) {
      case "message":
        if (str(a.text).trim()) sendEvent({ type: "text", text: str(a.text) });
        break;
      case "postback":
        sendEvent({ type: "postback", data: str(a.data), displayText: str(a.displayText || a.text) });
        break;
      case "uri": {
        var raw = a.uri || (isObj(a.altUri) ? a.altUri.desktop : null);
        var url = safeUrl(raw, ["http:", "https:", "tel:", "mailto:"]);
        if (url) window.open(url, "_blank", "noopener,noreferrer");
        else toast("ลิงก์นี้เปิดในตัวจำลองไม่ได้: " + str(raw), "This link cannot be opened here");
        break;
      }
      case "datetimepicker":
        pickDateTime(a);
        break;
      case "camera":
      case "cameraRoll":
        sendEvent({ type: "image" });
        break;
      case "location":
        sendEvent({ type: "location" });
        break;
      case "richmenuswitch":
        sendEvent({
          type: "postback",
          data: str(a.data),
          params: { newRichMenuAliasId: str(a.richMenuAliasId), status: "SUCCESS" },
        });
        break;
      case "clipboard":
        if (navigator.clipboard) navigator.clipboard.writeText(str(a.clipboardText)).catch(function () {});
        toast("คัดลอกแล้ว", "Copied");
        break;
      default:
        toast("ตัวจำลองยังไม่รองรับการกระทำแบบ " + str(a.type), "Action not supported: " + str(a.type));
    }
  }

  var pickerAction = null;

  function pickDateTime(a) {
    var dlg = document.getElementById("picker");
    var input = document.getElementById("picker-input");
    var mode = a.mode === "time" || a.mode === "datetime" ? a.mode : "date";
    pickerAction = { data: str(a.data), mode: mode };
    input.type = mode === "datetime" ? "datetime-local" : mode;
    input.value = "";
    input.removeAttribute("min");
    input.removeAttribute("max");
    if (a.min) input.min = str(a.min);
    if (a.max) input.max = str(a.max);
    if (a.initial) input.value = str(a.initial);
    if (typeof dlg.showModal === "function") dlg.showModal();
    else dlg.setAttribute("open", "");
    input.focus();
  }

  function setupPicker() {
    var dlg = document.getElementById("picker");
    var form = document.getElementById("picker-form");
    var input = document.getElementById("picker-input");
    document.getElementById("picker-cancel").addEventListener("click", function () {
      pickerAction = null;
      dlg.close();
    });
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var act = pickerAction;
      var value = input.value;
      if (!act || !value) return;
      pickerAction = null;
      dlg.close();
      var params = {};
      params[act.mode] = value;
      sendEvent({ type: "postback", data: act.data, params: params, displayText: value.replace("T", " ") });
    });
  }

  // -- rendering messages ----------------------------------------------------------------

  function sysNote(th, en) {
    return el("div", { class: "sys" }, bi(th, en));
  }

  function addRow(dir, node) {
    $log.append(node);
    S.lastRow = { dir: dir, el: node };
  }

  function addMessage(m) {
    var msg = isObj(m.message) ? m.message : {};
    if (m.direction === "in") renderIn(m, msg);
    else if (m.direction === "out") renderOut(m, msg);
    S.lastMsg = m;
  }

  function userRow(m, bubble) {
    var row = el("div", { class: "row user", dataset: { id: str(m.id) } },
      el("div", { class: "meta" }, el("span", { class: "time", text: timeOf(m.at) })),
      bubble);
    addRow("in", row);
    return row;
  }

  function userCard(icon, th, en, detail) {
    return el("div", { class: "bubble user-bubble card-bubble" },
      el("span", { class: "card-icon", "aria-hidden": "true" }, svgIcon(icon, 26)),
      el("span", { class: "card-text" }, bi(th, en), detail ? el("span", { class: "card-detail", text: detail }) : null));
  }

  function renderIn(m, msg) {
    var officeName = S.office ? S.office.name : "";
    switch (msg.type) {
      case "follow":
        S.following = true;
        addRow("sys", sysNote("คุณเพิ่ม " + officeName + " เป็นเพื่อนแล้ว", "You added the account as a friend"));
        updateFollowUi();
        return;
      case "unfollow":
        S.following = false;
        addRow("sys", sysNote("คุณเลิกติดตาม (บล็อก) บัญชีนี้แล้ว", "You unfollowed (blocked) this account"));
        updateFollowUi();
        return;
      case "unsend": {
        var row = S.byMessageId[str(msg.messageId)];
        if (row) {
          row.classList.add("unsent");
          var bubble = row.querySelector(".bubble");
          if (bubble) bubble.replaceWith(el("div", { class: "bubble user-bubble unsent-bubble" },
            bi("คุณยกเลิกการส่งข้อความ", "You unsent a message")));
          delete row.dataset.messageId;
        } else {
          addRow("sys", sysNote("คุณยกเลิกการส่งข้อความ", "You unsent a message"));
        }
        return;
      }
      case "text": {
        var r = userRow(m, el("div", { class: "bubble user-bubble", text: str(msg.text) }));
        if (msg.messageId) {
          r.dataset.messageId = str(msg.messageId);
          S.byMessageId[str(msg.messageId)] = r;
        }
        return;
      }
      case "postback":
        if (str(msg.displayText)) userRow(m, el("div", { class: "bubble user-bubble", text: str(msg.displayText) }));
        else addRow("sys", sysNote("กดปุ่มแล้ว (postback ไม่มีข้อความแสดง)", "Button tapped (postback without display text)"));
        return;
      case "image":
        userRow(m, userCard("photo", "รูปภาพ", "Photo"));
        return;
      case "video":
        userRow(m, userCard("video", "วิดีโอ", "Video"));
        return;
      case "audio":
        userRow(m, userCard("mic", "ข้อความเสียง", "Voice message"));
        return;
      case "file":
        userRow(m, userCard("file", "ไฟล์", "File", str(msg.fileName) || "document.pdf"));
        return;
      case "location":
        userRow(m, userCard("pin", "ตำแหน่ง", "Location", str(msg.address)));
        return;
      case "sticker":
        userRow(m, stickerNode(null));
        return;
      default:
        userRow(m, el("div", { class: "bubble user-bubble", text: "[" + str(msg.type) + "]" }));
    }
  }

  var KIND_LABEL = {
    push: ["ส่งแบบ push", "push"],
    multicast: ["ส่งแบบ multicast", "multicast"],
    broadcast: ["ประกาศถึงทุกคน", "broadcast"],
    narrowcast: ["ส่งแบบ narrowcast", "narrowcast"],
  };

  function renderOut(m, msg) {
    var content = renderBotMessage(msg);
    var sender = isObj(msg.sender) && msg.sender.name ? str(msg.sender.name) : (S.office ? S.office.name : "");
    var startRun = !(S.lastRow && S.lastRow.dir === "out" && S.lastRow.sender === sender);
    var meta = el("div", { class: "meta" }, el("span", { class: "time", text: timeOf(m.at) }));
    if (KIND_LABEL[m.kind]) meta.prepend(el("span", { class: "kind", title: KIND_LABEL[m.kind][1], text: KIND_LABEL[m.kind][0] }));
    var row = el("div", { class: "row bot" + (startRun ? " run-start" : ""), dataset: { id: str(m.id), type: str(msg.type) } },
      startRun ? el("div", { class: "avatar", "aria-hidden": "true" }, svgIcon("office", 18)) : el("div", { class: "avatar-space" }),
      el("div", { class: "bot-col" },
        startRun ? el("div", { class: "sender", text: sender }) : null,
        el("div", { class: "bot-line" }, content, meta)));
    addRow("out", row);
    S.lastRow.sender = sender;
  }

  function renderBotMessage(msg) {
    switch (msg.type) {
      case "text":
        return el("div", { class: "bubble bot-bubble", text: str(msg.text) });
      case "textV2":
        return el("div", { class: "bubble bot-bubble", text: str(msg.text) });
      case "image": {
        var src = safeUrl(msg.previewImageUrl) || safeUrl(msg.originalContentUrl);
        var full = safeUrl(msg.originalContentUrl) || src;
        if (!src) return el("div", { class: "bubble bot-bubble", text: "[รูปภาพ / image]" });
        return el("a", { class: "image-msg", href: full, target: "_blank", rel: "noopener noreferrer" },
          el("img", { src: full, alt: "รูปภาพจากบอท / Image from the bot", loading: "lazy" }));
      }
      case "sticker":
        return stickerNode(msg);
      case "template":
        return renderTemplate(msg);
      case "flex":
        return renderFlexMessage(msg);
      case "location":
        return el("div", { class: "bubble bot-bubble location-msg" },
          el("strong", { text: "📍 " + str(msg.title) }), el("div", { text: str(msg.address) }));
      case "video":
      case "audio": {
        var url = safeUrl(msg.originalContentUrl);
        return el("div", { class: "bubble bot-bubble" },
          bi(msg.type === "video" ? "วิดีโอ" : "เสียง", msg.type),
          url ? el("div", {}, el("a", { href: url, target: "_blank", rel: "noopener noreferrer", text: "เปิด / Open" })) : null);
      }
      case "imagemap":
        return renderImagemap(msg);
      default:
        return el("div", { class: "bubble bot-bubble unknown" }, "[" + str(msg.type) + "] " + str(msg.altText));
    }
  }

  /** A placeholder for a sticker: a drawn smiley, since LINE's sticker images are not ours to show. */
  var STICKER_COLORS = ["#ffc83d", "#ff9fb2", "#8fd3ff", "#a6e88a", "#c9a7ff"];
  function stickerNode(msg) {
    var n = msg ? parseInt(str(msg.stickerId), 10) : 0;
    var color = STICKER_COLORS[isNaN(n) ? 0 : n % STICKER_COLORS.length];
    var NS = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(NS, "svg");
    svg.setAttribute("viewBox", "0 0 64 64");
    svg.setAttribute("width", "72");
    svg.setAttribute("height", "72");
    var parts = [
      ["circle", { cx: 32, cy: 32, r: 28, fill: color, stroke: "#3b2f1e", "stroke-width": 2.5 }],
      ["circle", { cx: 23, cy: 27, r: 3.5, fill: "#3b2f1e" }],
      ["circle", { cx: 41, cy: 27, r: 3.5, fill: "#3b2f1e" }],
      ["path", { d: "M20 38 Q32 50 44 38", fill: "none", stroke: "#3b2f1e", "stroke-width": 3, "stroke-linecap": "round" }],
      ["circle", { cx: 16, cy: 36, r: 4, fill: "#ff7b7b", opacity: 0.5 }],
      ["circle", { cx: 48, cy: 36, r: 4, fill: "#ff7b7b", opacity: 0.5 }],
    ];
    parts.forEach(function (p) {
      var node = document.createElementNS(NS, p[0]);
      Object.keys(p[1]).forEach(function (k) { node.setAttribute(k, String(p[1][k])); });
      svg.append(node);
    });
    var title = msg ? "สติกเกอร์ / Sticker " + str(msg.packageId) + "/" + str(msg.stickerId) : "สติกเกอร์ / Sticker";
    return el("div", { class: "sticker", role: "img", title: title, "aria-label": title }, svg);
  }

  // -- quick replies, typing, unsend, follow --------------------------------------------

  function afterBatch(scroll) {
    var last = S.lastMsg;
    var qr = last && last.direction === "out" && isObj(last.message) && isObj(last.message.quickReply)
      ? last.message.quickReply.items : null;
    renderQuick(Array.isArray(qr) ? qr : null);
    placeUnsend();
    updateFollowUi();
    renderTyping();
    if (scroll) scrollToEnd();
  }

  function scrollToEnd() {
    requestAnimationFrame(function () { $log.scrollTop = $log.scrollHeight; });
  }

  function renderQuick(items) {
    $quick.replaceChildren();
    if (!items || !items.length) { $quick.hidden = true; return; }
    items.forEach(function (item) {
      if (!isObj(item) || !isObj(item.action)) return;
      var a = item.action;
      var label = str(a.label) || str(a.text) || str(a.displayText) || str(a.type);
      var icon = safeUrl(item.imageUrl);
      var chip = el("button", { type: "button", class: "chip", dataset: { actionType: str(a.type) }, title: label, onclick: function () { doAction(a); } },
        icon ? el("img", { src: icon, alt: "" }) : null,
        el("span", { text: label }));
      $quick.append(chip);
    });
    $quick.hidden = !$quick.children.length;
  }

  var $typing = null;
  function renderTyping() {
    var on = S.typingUntil > Date.now();
    if (on) {
      if (!$typing) {
        $typing = el("div", { class: "row bot typing", "aria-label": "กำลังพิมพ์ / typing" },
          el("div", { class: "avatar", "aria-hidden": "true" }, svgIcon("office", 18)),
          el("div", { class: "bubble bot-bubble dots" }, el("i"), el("i"), el("i")));
      }
      if ($log.lastChild !== $typing) { $log.append($typing); scrollToEnd(); }
    } else if ($typing && $typing.parentNode) {
      $typing.remove();
    }
  }

  function placeUnsend() {
    Array.prototype.forEach.call($log.querySelectorAll(".unsend"), function (b) { b.remove(); });
    var rows = $log.querySelectorAll(".row.user[data-message-id]");
    var row = rows[rows.length - 1];
    if (!row || row.classList.contains("unsent")) return;
    var mid = row.dataset.messageId;
    var btn = el("button", {
      type: "button", class: "unsend", "data-testid": "unsend",
      title: "ยกเลิกการส่งข้อความนี้ / Unsend this message",
      onclick: function () { btn.disabled = true; sendEvent({ type: "unsend", messageId: mid }); },
    }, "ยกเลิกส่ง · Unsend");
    row.querySelector(".meta").prepend(btn);
  }

  function updateFollowUi() {
    var card = document.getElementById("follow-card");
    var show = S.loaded && S.following === false && !!S.office;
    if (show && !card) {
      var again = S.lastId > 0;
      card = el("div", { class: "follow-card", id: "follow-card" },
        el("div", { class: "avatar avatar-xl", "aria-hidden": "true" }, svgIcon("office", 40)),
        el("div", { class: "follow-name", text: S.office.name }),
        el("div", { class: "follow-sub" }, bi("บัญชีทางการ LINE", "LINE Official Account")),
        el("p", { class: "follow-hint" }, bi(
          again ? "ผู้ใช้นี้เลิกติดตามแล้ว เพิ่มเพื่อนอีกครั้งเพื่อรับข้อความ" : "ผู้ใช้ใหม่เริ่มจากการเพิ่มเพื่อน เหมือนใน LINE",
          again ? "This user unfollowed. Follow again to get messages." : "A new user starts by adding the account as a friend, as on LINE.")),
        el("button", { type: "button", class: "btn btn-follow", id: "follow-btn", "data-testid": "follow",
          onclick: function (ev) {
            var b = ev.currentTarget;
            b.disabled = true;
            setTimeout(function () { b.disabled = false; }, 5000);
            sendEvent({ type: "follow" });
          } },
          bi(again ? "เพิ่มเพื่อนอีกครั้ง" : "เพิ่มเพื่อน", again ? "Follow again" : "Follow")));
      $log.append(card);
      scrollToEnd();
    } else if (!show && card) {
      card.remove();
    } else if (show && card && $log.lastChild !== card && !($typing && $log.lastChild === $typing)) {
      $log.append(card);
    }
    $follow.disabled = !S.loaded || !S.office;
    $follow.replaceChildren(S.following
      ? bi("เลิกติดตาม", "Unfollow")
      : bi("เพิ่มเพื่อน", "Follow"));
    $follow.classList.toggle("btn-follow", !S.following);
  }

  function updateLangUi() {
    var chip = document.getElementById("lang-chip");
    chip.textContent = S.lang === "en" ? "EN" : "TH";
    chip.title = S.lang === "en" ? "บอทตอบผู้ใช้นี้เป็นภาษาอังกฤษ / The bot answers this user in English"
      : "บอทตอบผู้ใช้นี้เป็นภาษาไทย / The bot answers this user in Thai";
  }

  // -- rich menu -------------------------------------------------------------------------

  function loadRichMenu() {
    if (!S.office || !S.user) return;
    var gen = S.gen;
    fetch(api("/richmenu?user=" + encodeURIComponent(S.user.id)), { cache: "no-store" })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then(function (menu) {
        if (gen !== S.gen) return;
        renderRichMenu(menu);
      })
      .catch(function () {
        if (gen === S.gen) document.getElementById("richmenu").hidden = true;
      });
  }

  function renderRichMenu(menu) {
    var box = document.getElementById("richmenu");
    var areasBox = document.getElementById("richmenu-areas");
    var img = document.getElementById("richmenu-img");
    var size = isObj(menu.size) ? menu.size : { width: 2500, height: 843 };
    var w = Number(size.width) || 2500;
    var h = Number(size.height) || 843;
    var src = safeUrl(menu.image);
    if (!src) { box.hidden = true; return; }
    var key = src + "|" + JSON.stringify(menu.areas || []);
    if (key === S.richmenuKey) { box.hidden = false; return; }
    S.richmenuKey = key;
    img.src = src;
    img.width = w;
    img.height = h;
    document.getElementById("richmenu-panel").style.aspectRatio = w + " / " + h;
    areasBox.replaceChildren();
    (Array.isArray(menu.areas) ? menu.areas : []).forEach(function (area, i) {
      if (!isObj(area) || !isObj(area.bounds)) return;
      var b = area.bounds;
      var a = isObj(area.action) ? area.action : {};
      var label = str(a.label) || str(a.displayText) || "area " + (i + 1);
      areasBox.append(el("button", {
        type: "button",
        class: "rm-area",
        title: label,
        "aria-label": label,
        dataset: { testid: "richmenu-area" },
        style: {
          left: (100 * (Number(b.x) || 0) / w) + "%",
          top: (100 * (Number(b.y) || 0) / h) + "%",
          width: (100 * (Number(b.width) || 0) / w) + "%",
          height: (100 * (Number(b.height) || 0) / h) + "%",
        },
        onclick: function () { doAction(a); },
      }));
    });
    box.hidden = false;
  }

  function setupRichMenuToggle() {
    var btn = document.getElementById("richmenu-toggle");
    var panel = document.getElementById("richmenu-panel");
    btn.addEventListener("click", function () {
      var open = btn.getAttribute("aria-expanded") !== "true";
      btn.setAttribute("aria-expanded", String(open));
      panel.hidden = !open;
      document.getElementById("richmenu").classList.toggle("closed", !open);
    });
  }

  // -- templates -------------------------------------------------------------------------

  function actionButton(a, cls) {
    var label = str(isObj(a) ? a.label : "") || str(isObj(a) ? a.type : "");
    return el("button", { type: "button", class: cls || "tpl-action", title: label, onclick: function () { doAction(a); } }, label);
  }

  function renderTemplate(msg) {
    var t = isObj(msg.template) ? msg.template : {};
    switch (t.type) {
      case "buttons":
        return el("div", { class: "tpl tpl-buttons" }, templateColumn(t, t));
      case "confirm":
        return el("div", { class: "tpl tpl-confirm" },
          el("div", { class: "tpl-text", text: str(t.text) }),
          el("div", { class: "tpl-confirm-actions" },
            (Array.isArray(t.actions) ? t.actions : []).map(function (a) { return actionButton(a); })));
      case "carousel":
        return el("div", { class: "carousel" },
          (Array.isArray(t.columns) ? t.columns : []).map(function (c) {
            return el("div", { class: "tpl tpl-buttons carousel-item" }, templateColumn(isObj(c) ? c : {}, t));
          }));
      case "image_carousel":
        return el("div", { class: "carousel" },
          (Array.isArray(t.columns) ? t.columns : []).map(function (c) {
            c = isObj(c) ? c : {};
            var src = safeUrl(c.imageUrl);
            return el("div", { class: "tpl image-col carousel-item" },
              src ? el("img", { src: src, alt: "" }) : null,
              isObj(c.action) ? actionButton(c.action, "image-col-label") : null);
          }));
      default:
        return el("div", { class: "bubble bot-bubble unknown", text: "[template] " + str(msg.altText) });
    }
  }

  function templateColumn(c, t) {
    var parts = [];
    var thumb = safeUrl(c.thumbnailImageUrl);
    if (thumb) {
      var img = el("img", { class: "tpl-thumb", src: thumb, alt: "" });
      img.style.aspectRatio = t.imageAspectRatio === "square" ? "1 / 1" : "1.51 / 1";
      img.style.objectFit = t.imageSize === "contain" ? "contain" : "cover";
      var bg = cssColor(c.imageBackgroundColor);
      if (bg) img.style.backgroundColor = bg;
      parts.push(img);
    }
    var head = el("div", { class: "tpl-body" },
      c.title ? el("div", { class: "tpl-title", text: str(c.title) }) : null,
      el("div", { class: "tpl-text", text: str(c.text) }));
    if (isObj(c.defaultAction)) {
      head.classList.add("clickable");
      head.addEventListener("click", function () { doAction(c.defaultAction); });
    }
    parts.push(head);
    parts.push(el("div", { class: "tpl-actions" },
      (Array.isArray(c.actions) ? c.actions : []).map(function (a) { return actionButton(a); })));
    return parts;
  }

  function renderImagemap(msg) {
    var base = safeUrl(msg.baseUrl);
    var bs = isObj(msg.baseSize) ? msg.baseSize : { width: 1040, height: 1040 };
    var w = Number(bs.width) || 1040;
    var h = Number(bs.height) || 1040;
    var wrap = el("div", { class: "imagemap" });
    wrap.style.aspectRatio = w + " / " + h;
    if (base) wrap.append(el("img", { src: base + "/1040", alt: str(msg.altText) }));
    else wrap.append(el("div", { class: "unknown", text: str(msg.altText) }));
    (Array.isArray(msg.actions) ? msg.actions : []).forEach(function (a) {
      if (!isObj(a) || !isObj(a.area)) return;
      var act = a.type === "message" ? { type: "message", text: a.text } : { type: "uri", uri: a.linkUri };
      wrap.append(el("button", {
        type: "button", class: "rm-area", title: str(a.label || a.text || a.linkUri),
        style: {
          left: (100 * a.area.x / w) + "%", top: (100 * a.area.y / h) + "%",
          width: (100 * a.area.width / w) + "%", height: (100 * a.area.height / h) + "%",
        },
        onclick: function () { doAction(act); },
      }));
    });
    return wrap;
  }

  // -- flex ------------------------------------------------------------------------------

  var FONT = { xxs: 11, xs: 13, sm: 14, md: 16, lg: 19, xl: 22, xxl: 29, "3xl": 35, "4xl": 48, "5xl": 74 };
  var SPACE = { none: 0, xs: 2, sm: 4, md: 8, lg: 12, xl: 16, xxl: 20 };
  var BUBBLE_W = { nano: 120, micro: 160, deca: 220, hecto: 241, kilo: 260, mega: 300, giga: 386 };
  var IMG_W = { xxs: 40, xs: 60, sm: 80, md: 100, lg: 120, xl: 140, xxl: 160, "3xl": 180, "4xl": 200, "5xl": 220 };

  function spaceOf(v) {
    if (v in SPACE) return SPACE[v] + "px";
    return cssSize(v);
  }

  function renderFlexMessage(msg) {
    var c = isObj(msg.contents) ? msg.contents : {};
    if (c.type === "carousel") {
      return el("div", { class: "carousel" },
        (Array.isArray(c.contents) ? c.contents : []).map(function (b) {
          var node = flexBubble(isObj(b) ? b : {});
          node.classList.add("carousel-item");
          return node;
        }));
    }
    return flexBubble(c);
  }

  function flexBubble(b) {
    var styles = isObj(b.styles) ? b.styles : {};
    var bubble = el("div", { class: "flex-bubble" });
    var w = BUBBLE_W[b.size] || BUBBLE_W.mega;
    bubble.style.width = w + "px";
    if (b.direction === "rtl") bubble.dir = "rtl";
    ["header", "hero", "body", "footer"].forEach(function (part) {
      if (!isObj(b[part])) return;
      var st = isObj(styles[part]) ? styles[part] : {};
      var block = el("div", { class: "flex-" + part });
      var bg = cssColor(st.backgroundColor);
      if (bg) block.style.backgroundColor = bg;
      if (st.separator && bubble.children.length) {
        block.style.borderTop = "1px solid " + (cssColor(st.separatorColor) || "#e6e6e6");
      }
      var node = flexComponent(b[part], "vertical");
      if (part !== "hero" && b[part].type === "box" && !hasPadding(b[part])) {
        node.style.padding = part === "footer" ? "10px" : "16px";
      }
      block.append(node);
      bubble.append(block);
    });
    if (isObj(b.action)) makeClickable(bubble, b.action);
    return bubble;
  }

  function hasPadding(c) {
    return ["paddingAll", "paddingTop", "paddingBottom", "paddingStart", "paddingEnd"].some(function (k) { return k in c; });
  }

  function makeClickable(node, action) {
    node.classList.add("clickable");
    node.setAttribute("role", "button");
    node.tabIndex = 0;
    node.addEventListener("click", function (ev) { ev.stopPropagation(); doAction(action); });
  }

  function flexComponent(c, parentLayout) {
    if (!isObj(c)) return el("span");
    var node;
    switch (c.type) {
      case "box": node = flexBox(c); break;
      case "text": node = flexText(c); break;
      case "button": node = flexButton(c); break;
      case "image": node = flexImage(c); break;
      case "icon": node = flexIcon(c); break;
      case "separator":
        node = el("div", { class: "flex-separator" });
        var col = cssColor(c.color) || "#e6e6e6";
        if (parentLayout === "vertical") node.style.borderTop = "1px solid " + col;
        else node.style.borderLeft = "1px solid " + col;
        break;
      case "filler":
        node = el("div", { class: "flex-filler" });
        node.style.flex = (typeof c.flex === "number" ? c.flex : 1) + " 1 0";
        return node;
      case "spacer":
        node = el("div", { class: "flex-spacer" });
        node.style.minHeight = node.style.minWidth = spaceOf(c.size || "md") || "8px";
        return node;
      case "video":
        return isObj(c.altContent) ? flexComponent(c.altContent, parentLayout) : el("div", { class: "unknown", text: "[video]" });
      default:
        return el("span", { class: "unknown", text: "[" + str(c.type) + "]" });
    }
    // layout inside the parent box
    var flex = typeof c.flex === "number" ? c.flex : (parentLayout === "vertical" ? 0 : 1);
    if (c.type !== "separator") node.style.flex = flex === 0 ? "0 0 auto" : flex + " 1 0";
    var m = spaceOf(c.margin);
    if (m) {
      if (parentLayout === "vertical") node.style.marginTop = m;
      else node.style.marginInlineStart = m;
    }
    if (c.position === "absolute") {
      node.style.position = "absolute";
      ["offsetTop", "offsetBottom", "offsetStart", "offsetEnd"].forEach(function (k) {
        var v = spaceOf(c[k]);
        if (v) node.style[{ offsetTop: "top", offsetBottom: "bottom", offsetStart: "left", offsetEnd: "right" }[k]] = v;
      });
    }
    if (c.alignSelf || c.gravity) {
      var g = { top: "flex-start", bottom: "flex-end", center: "center", start: "flex-start", end: "flex-end" };
      if (c.gravity && g[c.gravity]) node.style.alignSelf = g[c.gravity];
    }
    return node;
  }

  function flexBox(c) {
    var layout = c.layout === "horizontal" || c.layout === "baseline" ? c.layout : "vertical";
    var box = el("div", { class: "flex-box flex-" + layout });
    box.style.display = "flex";
    box.style.flexDirection = layout === "vertical" ? "column" : "row";
    if (layout === "baseline") box.style.alignItems = "baseline";
    var gap = spaceOf(c.spacing);
    if (gap) box.style.gap = gap;
    var bg = cssColor(c.backgroundColor);
    if (bg) box.style.backgroundColor = bg;
    var bc = cssColor(c.borderColor);
    var bw = c.borderWidth === "light" ? "0.5px" : c.borderWidth === "normal" ? "1px" : c.borderWidth === "medium" ? "2px"
      : c.borderWidth === "semi-bold" ? "3px" : c.borderWidth === "bold" ? "4px" : cssSize(c.borderWidth);
    if (bw) box.style.border = bw + " solid " + (bc || "#000");
    var r = c.cornerRadius in SPACE ? SPACE[c.cornerRadius] + "px" : cssSize(c.cornerRadius);
    if (r) { box.style.borderRadius = r; box.style.overflow = "hidden"; }
    var pads = { paddingAll: "padding", paddingTop: "paddingTop", paddingBottom: "paddingBottom",
      paddingStart: "paddingInlineStart", paddingEnd: "paddingInlineEnd" };
    Object.keys(pads).forEach(function (k) { var v = spaceOf(c[k]); if (v) box.style[pads[k]] = v; });
    ["width", "maxWidth", "height", "maxHeight"].forEach(function (k) { var v = cssSize(c[k]); if (v) box.style[k] = v; });
    var J = { "flex-start": "flex-start", "flex-end": "flex-end", center: "center", "space-between": "space-between",
      "space-around": "space-around", "space-evenly": "space-evenly" };
    if (J[c.justifyContent]) box.style.justifyContent = J[c.justifyContent];
    if (J[c.alignItems]) box.style.alignItems = J[c.alignItems];
    box.style.position = "relative";
    (Array.isArray(c.contents) ? c.contents : []).forEach(function (child) {
      box.append(flexComponent(child, layout));
    });
    if (isObj(c.action)) makeClickable(box, c.action);
    return box;
  }

  function textStyle(node, c) {
    var size = FONT[c.size] ? FONT[c.size] + "px" : cssSize(c.size);
    if (size) node.style.fontSize = size;
    if (c.weight === "bold") node.style.fontWeight = "700";
    var col = cssColor(c.color);
    if (col) node.style.color = col;
    if (c.style === "italic") node.style.fontStyle = "italic";
    if (c.decoration === "underline" || c.decoration === "line-through") node.style.textDecoration = c.decoration;
  }

  function flexText(c) {
    var node = el("div", { class: "flex-text" });
    if (Array.isArray(c.contents) && c.contents.length) {
      c.contents.forEach(function (span) {
        if (!isObj(span) || span.type !== "span") return;
        var s = el("span", { text: str(span.text) });
        textStyle(s, span);
        node.append(s);
      });
    } else {
      node.textContent = str(c.text);
    }
    textStyle(node, c);
    if (c.wrap) {
      node.style.whiteSpace = "pre-wrap";
      node.style.overflowWrap = "anywhere";
      if (typeof c.maxLines === "number" && c.maxLines > 0) {
        node.style.display = "-webkit-box";
        node.style.webkitBoxOrient = "vertical";
        node.style.webkitLineClamp = String(c.maxLines);
        node.style.overflow = "hidden";
      }
    } else {
      node.style.whiteSpace = "nowrap";
      node.style.overflow = "hidden";
      node.style.textOverflow = "ellipsis";
    }
    var al = { start: "start", end: "end", center: "center" }[c.align];
    if (al) node.style.textAlign = al;
    var ls = cssSize(c.lineSpacing);
    if (ls) node.style.lineHeight = "calc(1.4em + " + ls + ")";
    if (isObj(c.action)) makeClickable(node, c.action);
    return node;
  }

  function flexButton(c) {
    var a = isObj(c.action) ? c.action : {};
    var style = c.style === "primary" || c.style === "secondary" ? c.style : "link";
    var btn = el("button", { type: "button", class: "flex-button flex-button-" + style, title: str(a.label) }, str(a.label));
    var col = cssColor(c.color);
    if (col) {
      if (style === "link") btn.style.color = col;
      else btn.style.backgroundColor = col;
    }
    if (c.height === "sm") btn.classList.add("flex-button-sm");
    btn.addEventListener("click", function (ev) { ev.stopPropagation(); doAction(a); });
    return btn;
  }

  function flexImage(c) {
    var src = safeUrl(c.url);
    var wrap = el("div", { class: "flex-image" });
    var size = c.size || "md";
    if (size === "full") wrap.style.width = "100%";
    else wrap.style.width = IMG_W[size] ? IMG_W[size] + "px" : cssSize(size) || "100px";
    wrap.style.maxWidth = "100%";
    var align = c.align === "start" ? "flex-start" : c.align === "end" ? "flex-end" : "center";
    wrap.style.alignSelf = align;
    var ratio = typeof c.aspectRatio === "string" && /^\d+(\.\d+)?:\d+(\.\d+)?$/.test(c.aspectRatio) ? c.aspectRatio : "1:1";
    var img = el("img", { alt: "", src: src || undefined, loading: "lazy" });
    img.style.aspectRatio = ratio.replace(":", " / ");
    img.style.objectFit = c.aspectMode === "cover" ? "cover" : "contain";
    var bg = cssColor(c.backgroundColor);
    if (bg) img.style.backgroundColor = bg;
    wrap.append(img);
    if (isObj(c.action)) makeClickable(wrap, c.action);
    return wrap;
  }

  function flexIcon(c) {
    var src = safeUrl(c.url);
    var size = FONT[c.size] ? FONT[c.size] + "px" : cssSize(c.size) || "16px";
    var img = el("img", { class: "flex-icon", alt: "", src: src || undefined });
    img.style.height = size;
    img.style.width = "auto";
    return img;
  }

  // -- wiring ----------------------------------------------------------------------------

  function autosize() {
    $text.style.height = "auto";
    $text.style.height = Math.min($text.scrollHeight, 120) + "px";
  }

  function init() {
    fillOffices();
    $officeSel.addEventListener("change", function () {
      S.office = offices.filter(function (o) { return o.slug === $officeSel.value; })[0] || offices[0];
      store.office = S.office ? S.office.slug : null;
      saveStore();
      switchChat();
    });
    $userSel.addEventListener("change", function () {
      store.current = $userSel.value;
      saveStore();
      switchChat();
    });
    document.getElementById("new-user").addEventListener("click", function () {
      newUser();
      switchChat();
    });
    document.getElementById("remove-user").addEventListener("click", function () {
      if (!S.user) return;
      if (!window.confirm("ลบ " + S.user.name + " ออกจากรายการ? / Remove " + S.user.name + " from the list?")) return;
      store.users = store.users.filter(function (u) { return u.id !== S.user.id; });
      store.current = store.users.length ? store.users[0].id : null;
      saveStore();
      switchChat();
    });
    $follow.addEventListener("click", function () {
      sendEvent({ type: S.following ? "unfollow" : "follow" });
    });
    document.getElementById("composer").addEventListener("submit", function (ev) {
      ev.preventDefault();
      sendText();
    });
    $text.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
        ev.preventDefault();
        sendText();
      }
    });
    $text.addEventListener("input", autosize);
    Array.prototype.forEach.call(document.querySelectorAll("[data-send]"), function (b) {
      b.addEventListener("click", function () { sendEvent({ type: b.dataset.send }); });
    });
    setupPicker();
    setupRichMenuToggle();
    switchChat();
    setTimeout(loop, 700);
  }

  init();
})();
