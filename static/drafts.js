// Keeps the admin's unsaved post in this browser, so that a submit that cannot be saved loses
// nothing. The case it is for: the session ended while the admin was writing (sessions last 12
// hours from login, or they logged out in another tab); the server then sends the submit to the
// login without reading the form, and cannot keep the text itself (the CSRF token is tied to the
// session that ended).
//
// - On the post form (form[data-draft-key]), every change is saved to localStorage under
//   "blog-draft:" and the form's key ("new", or "edit:id:<id>": the post's id, which a change of
//   its slug keeps, and which a new post at its old slug does not have), with the time and, on an
//   edit form, the version of the post the text was typed against.
// - Drafts of edits were once kept under "edit:<slug>". The edit form at that slug moves such a
//   draft to the post's key (data-legacy-draft-key names the old key), once, so a draft kept
//   before the deploy is not lost; unless its version (or, from before versions, the time it was
//   saved) is older than the post (data-post-created): then it was typed for the post that had
//   the slug before, and it is left where it is. A post given the slug after the draft was typed
//   cannot be told apart (no slug history is kept): it is offered the draft, which restores the
//   other post's version, so saving it is a conflict that shows both, never a silent overwrite.
// - When the form opens and a saved draft for its key differs from what the form shows, a notice
//   above the form offers to restore it or discard it. Nothing is put into the form without asking.
// - Restoring a draft also restores that version, so a draft typed before someone else saved the
//   post is saved as a conflict (the form comes back with both), never over their save.
// - A draft is removed only once the server has confirmed the save: the page the save redirects to
//   names the key in <main data-saved-draft>. Not on submit: that submit may be the one that fails
//   (a form sent back with an error keeps its draft).
//
// Plain JavaScript, no dependencies. Without JavaScript, or without localStorage, the form works as
// it always did.
(() => {
  "use strict";

  const PREFIX = "blog-draft:";
  const TEXT_FIELDS = ["title", "slug", "body", "tags"];

  // localStorage may be missing or refused (private modes, storage disabled): then do nothing.
  let storage;
  try {
    storage = window.localStorage;
    storage.getItem(PREFIX);
  } catch {
    return;
  }

  const read = (key) => {
    try {
      const draft = JSON.parse(storage.getItem(PREFIX + key));
      const valid = draft && typeof draft === "object"
        && TEXT_FIELDS.every((name) => typeof draft[name] === "string")
        && typeof draft.published === "boolean" && typeof draft.savedAt === "number"
        && (draft.version === undefined || typeof draft.version === "string");
      return valid ? draft : null;
    } catch {
      return null;
    }
  };
  const write = (key, draft) => {
    try {
      storage.setItem(PREFIX + key, JSON.stringify(draft));
      return true;
    } catch {
      // Storage full or refused: the form itself still works.
      return false;
    }
  };
  const remove = (key) => {
    try {
      storage.removeItem(PREFIX + key);
    } catch {
      // As above.
    }
  };

  // The page a save redirected to: that form's draft is saved on the server now.
  const saved = document.querySelector("main[data-saved-draft]");
  if (saved) remove(saved.dataset.savedDraft);

  const form = document.querySelector("form[data-draft-key]");
  if (!form) return;
  const key = form.dataset.draftKey;

  // A draft of this post kept under its slug, by the script of before drafts were keyed by the
  // post: moved to this form's key (the newer of the two kept), unless it was typed against a
  // version older than this post, which makes it another post's.
  const legacyKey = form.dataset.legacyDraftKey;
  if (legacyKey && legacyKey !== key) {
    const legacy = read(legacyKey);
    const created = form.dataset.postCreated;
    // A version is "<updated_at>~<tags hash>", its time in the format of data-post-created
    // (RFC 3339, nanoseconds, UTC), so comparing the texts compares the times. A draft of before
    // versions has only the time it was saved (milliseconds): compared at that precision.
    let anotherPosts = false;
    if (legacy && created) {
      if (legacy.version) {
        anotherPosts = legacy.version.split("~")[0] < created;
      } else {
        const createdMs = Date.parse(created.replace(/(\.\d{3})\d*Z$/, "$1Z"));
        anotherPosts = Number.isFinite(createdMs) && legacy.savedAt < createdMs;
      }
    }
    if (legacy && !anotherPosts) {
      const current = read(key);
      if (!current || current.savedAt < legacy.savedAt) {
        if (write(key, legacy)) remove(legacyKey);
      } else {
        remove(legacyKey);
      }
    }
  }
  const field = (name) => form.elements.namedItem(name);

  const shown = () => {
    const values = { published: field("published").checked };
    for (const name of TEXT_FIELDS) values[name] = field(name).value;
    return values;
  };
  const same = (a, b) =>
    a.published === b.published && TEXT_FIELDS.every((name) => a[name] === b[name]);

  // The version of the post this form's text is based on (edit forms only).
  const version = field("version");
  let typed = false;
  const save = () => {
    typed = true;
    const draft = { ...shown(), savedAt: Date.now() };
    if (version) draft.version = version.value;
    write(key, draft);
  };

  const offer = (draft) => {
    const when = new Date(draft.savedAt);
    const notice = document.createElement("div");
    notice.className = "draft-notice";
    notice.setAttribute("role", "alert");
    const text = document.createElement("p");
    const time = document.createElement("time");
    time.dateTime = when.toISOString();
    time.textContent = when.toLocaleString();
    const title = draft.title.trim() ? ` (\u201c${draft.title.trim()}\u201d)` : "";
    text.append("You have unsaved changes from ", time, `${title}, kept in this browser. `
      + "Restore them into the form, or discard them; typing in the form replaces them.");
    const button = (label, action, className, onClick) => {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = label;
      b.dataset.draftAction = action;
      if (className) b.className = className;
      b.addEventListener("click", () => {
        onClick();
        notice.remove();
        field("title").focus();
      });
      return b;
    };
    const restore = button("Restore them", "restore", "", () => {
      for (const name of TEXT_FIELDS) field(name).value = draft[name];
      field("published").checked = draft.published;
      // A draft from before versions were kept has none: its base is unknown, so it must not
      // pass for the version shown (the server then answers with a conflict to resolve).
      if (version) version.value = draft.version ?? "";
      save();
    });
    // What was typed since the notice appeared is the draft now: discarding keeps that.
    const discard = button("Discard them", "discard", "secondary", () => {
      if (!typed) remove(key);
    });
    const actions = document.createElement("p");
    actions.className = "row-actions";
    actions.append(restore, discard);
    notice.append(text, actions);
    form.before(notice);
  };

  const draft = read(key);
  if (draft && !same(draft, shown())) offer(draft);
  form.addEventListener("input", save);
  form.addEventListener("change", save);
  form.dataset.draftReady = "";
})();
