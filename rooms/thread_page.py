"""What a thread page shows, read in a few set-based queries and prepared in one pass.

The page of a long thread shows up to a few hundred posts. Rendering each through
nested template macros, asking the permission module from the template and building
every link with `url_for` cost most of the page's time, so this module does that work
once in Python:

- the page's posts come in three queries (the opening post, the page's top-level
  replies, then every post of their subtrees in `path` order with authors joined) and
  their attachments in one more;
- each post becomes a `PostView`: the author as pages show it (pseudonyms included),
  formatted dates (in the reader's time zone), the cached sanitised HTML, attachments, and what the reader may do
  with it, decided by `auth.permissions` (room-wide answers are asked once per page);
- the reply tree is flattened into the page order, each row carrying the list and
  item tags that open before it and close after it, so the template is one loop with
  no recursion. The markup is the one `rooms/_post.html` always produced (and that
  `static/js/live.js` inserts for live posts): `ol.replies > li.reply.depth-N >
  article.post`, with levels beyond every fourth behind `details.more-replies`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from flask import url_for
from markupsafe import Markup
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload, lazyload, load_only
from sqlalchemy.orm.attributes import set_committed_value

from auth.models import User
from collab import timezones
from collab.extensions import db
from rooms import policy, pseudonyms
from rooms.models import Attachment, Post, ReadState, Thread
from rooms.posts import FLAT_PER_PAGE, ROOTS_PER_PAGE

TREE_LEVELS = 4  # levels shown at once; each further four are behind "Show more replies"

# The page's posts all belong to the thread already loaded (set below, no query), show each
# author's name and job title but not their organisation, and get their attachments in one query
# (_attachments; `Post.attachments` is left unloaded). The Markdown source and other columns the page
# does not show are not read.
_LOADS = (lazyload(Post.thread), joinedload(Post.author).lazyload(User.organisation), lazyload(Post.attachments),
          load_only(Post.id, Post.thread_id, Post.parent_id, Post.author_id, Post.html, Post.path, Post.depth,
                    Post.created_at, Post.edited_at, Post.deleted_at, Post.hidden_at, Post.hidden_reason))


@dataclass(slots=True)
class AttachmentView:
    id: int
    filename: str
    size_kb: float
    is_image: bool
    url: str
    thumb_url: Optional[str]


@dataclass(slots=True)
class PostView:
    """One post as a page shows it to one reader (see rooms/_post.html)."""

    id: int
    deleted: bool
    author: str
    job_title: Optional[str]
    created_iso: str
    created_text: str
    edited: bool
    hidden: bool  # hidden by moderators
    text_shown: bool  # body, attachments and actions shown (not removed, and not hidden from this reader)
    hidden_reason: Optional[str]
    html: Markup
    attachments: list[AttachmentView]
    can_reply: bool
    can_edit: bool
    can_flag: bool
    can_moderate: bool
    can_delete: bool
    unread: bool = False  # new to this reader (the "next unread" key of static/js/post_menu.js)
    reply_to: Optional[tuple[int, str]] = None  # newest-first view: (id, author) of the reply this one answers
    before: Markup = Markup("")  # tree tags opened before the article
    after: Markup = Markup("")  # and closed after it

    @property
    def actions(self) -> str:
        """The entries of the post's "…" menu (static/js/post_menu.js builds it; rooms/post_actions.html lists
        them without JavaScript): one attribute per post instead of a row of buttons."""
        if not self.text_shown:
            return ""
        names = [("edit", self.can_edit), ("history", self.edited), ("flag", self.can_flag),
                 ("moderate", self.can_moderate), ("delete", self.can_delete)]
        return " ".join(n for n, ok in names if ok)


@dataclass
class ThreadPage:
    opening: PostView
    rows: list[PostView]  # the page's replies in page order (tree: with their tree tags; flat: newest first)
    page: int
    pages: int
    view: str
    first_unread_id: Optional[int]
    can_post: bool = False  # the reader may reply in this thread
    shown_ids: list[int] = field(default_factory=list)  # every post on the page (for the read marker)


class _Viewer:
    """What one reader may do in one room, asked of auth.permissions once per page where it does not depend
    on the post, and per post where it does."""

    def __init__(self, me: Optional[User], room, *, can_reply: Optional[bool] = None,
                 allow_edit: bool = True, thread_id: Optional[int] = None) -> None:
        self.me = me
        # Job titles beside posts: not in a non-attributed room, nor in an undecided idea of a "judge on
        # merit" room for anyone but its moderators (rooms/policy.py sees_thread_ranks).
        self.ranks = thread_id is None or policy.sees_thread_ranks(me, room, thread_id)
        self.my_id = getattr(me, "id", None)
        self.non_attributed = pseudonyms.applies(room)
        self.can_reply = policy.can_post(me, room) if can_reply is None else can_reply
        self.can_moderate = policy.can_moderate(me, room)
        self.allow_edit = allow_edit
        self._names: dict[Optional[int], str] = {}  # author id -> name as shown (the same for a whole thread)
        self.stamp = timezones.stamp(timezones.zone_name_for(me))  # "07 Mar 2025, 14:05 GMT" in the reader's zone

    def author_name(self, p: Post) -> str:
        name = self._names.get(p.author_id)
        if name is None:
            name = self._names[p.author_id] = pseudonyms.display(p)
        return name

    def view(self, p: Post, atts: list[Attachment]) -> PostView:
        me = self.me
        deleted = p.deleted_at is not None
        hidden = p.hidden_at is not None
        text_shown = not deleted and (not hidden or policy.can_see_hidden_post(me, p))
        author = p.author
        created = p.created_at
        return PostView(
            id=p.id,
            deleted=deleted,
            author="Post removed" if deleted else self.author_name(p),
            job_title=(author.job_title or None)
            if author is not None and not deleted and not self.non_attributed and self.ranks else None,
            created_iso=created.isoformat() + "Z",
            created_text=self.stamp(created),
            edited=p.edited_at is not None and not deleted,
            hidden=hidden,
            text_shown=text_shown,
            hidden_reason=p.hidden_reason,
            html=Markup(p.html),  # sanitised by nh3 when written (rooms/markdown.py), never rendered again
            attachments=[_attachment_view(a) for a in atts] if text_shown and atts else [],
            can_reply=text_shown and self.can_reply,
            can_edit=text_shown and self.allow_edit and policy.can_edit_post(me, p),
            can_flag=text_shown and p.author_id != self.my_id and policy.can_flag_post(me, p),
            can_moderate=text_shown and self.can_moderate,
            can_delete=text_shown and self.allow_edit and policy.can_delete_post(me, p),
        )


def _attachment_view(a: Attachment) -> AttachmentView:
    return AttachmentView(a.id, a.filename, round(a.size / 1024, 1), a.is_image,
                          url_for("rooms.attachment", attachment_id=a.id, filename=a.filename),
                          url_for("rooms.attachment_thumb", attachment_id=a.id) if a.is_image else None)


def _attachments(thread: Thread, posts: list[Post]) -> dict[int, list[Attachment]]:
    """The attachments of `posts` (all of `thread`), in one query that walks the thread's posts by id
    (an index range) rather than binding every id."""
    out: dict[int, list[Attachment]] = {}
    if not posts:
        return out
    ids = {p.id for p in posts}
    for a in db.session.scalars(
            select(Attachment).join(Post, Post.id == Attachment.post_id)
            .where(Post.thread_id == thread.id, Post.id >= min(ids), Post.id <= max(ids)).order_by(Attachment.id)):
        if a.post_id in ids:
            out.setdefault(a.post_id, []).append(a)
    return out


def _adopt(posts: list[Post], thread: Thread) -> None:
    """Give the loaded posts their thread (asked by the permission checks) without a lookup per post."""
    for p in posts:
        set_committed_value(p, "thread", thread)


def post_view(me: Optional[User], post: Post, *, can_reply: bool = False, allow_edit: bool = False) -> PostView:
    """A single post as quoted on another page (the reply form): no tree, by default no reply/edit/remove."""
    viewer = _Viewer(me, post.thread.room, can_reply=can_reply, allow_edit=allow_edit, thread_id=post.thread_id)
    return viewer.view(post, list(post.attachments))


def _tree(views: dict[int, PostView], posts: list[Post]) -> list[PostView]:
    """The page's replies (in `path` order: each post right after its parent's earlier subtrees) with the
    tags of the tree around them, exactly as the nested lists of rooms/_post.html used to be written."""
    children: dict[int, list[Post]] = {}
    roots: list[Post] = []
    ids = {p.id for p in posts}
    for p in posts:
        if p.depth == 1:
            roots.append(p)
        elif p.parent_id in ids:
            children.setdefault(p.parent_id, []).append(p)
    rows: list[PostView] = []
    if not roots:
        return rows
    opening: list[str] = ['<ol class="replies">']  # tags waiting to open before the next row
    after: list[list[str]] = []  # tags to close after each row, by row index
    # Each level: the posts still to show, the deepest depth shown directly, and the tags that close it.
    stack: list[tuple[Any, int, str]] = [(iter(roots), TREE_LEVELS, "</ol>")]
    while stack:
        it, max_depth, closing = stack[-1]
        p = next(it, None)
        if p is None:
            stack.pop()
            after[-1].append(closing)
            if stack:
                after[-1].append("</li>")
            continue
        v = views[p.id]
        opening.append(f'<li class="reply depth-{min(p.depth, 6)}">')
        v.before = Markup("".join(opening))
        opening.clear()
        rows.append(v)
        after.append([])
        kids = children.get(p.id)
        if not kids:
            after[-1].append("</li>")
        elif p.depth < max_depth:
            opening.append('<ol class="replies">')
            stack.append((iter(kids), max_depth, "</ol>"))
        else:
            opening.append(f'<details class="more-replies"><summary>Show more replies ({len(kids)})</summary>'
                           '<ol class="replies">')
            stack.append((iter(kids), max_depth + TREE_LEVELS, "</ol></details>"))
    for v, tags in zip(rows, after):
        v.after = Markup("".join(tags))
    return rows


def _reply_to(viewer: _Viewer, thread: Thread, posts: list[Post], views: dict[int, PostView]) -> None:
    """Newest first, a reply to a reply says which one it answers ("In reply to Margaret Ellis"): the parents
    not on the page come in one query, and their authors are named as the thread names them (pseudonyms,
    a removed post)."""
    wanted = {p.parent_id for p in posts if p.depth > 1 and p.parent_id is not None}
    if not wanted:
        return
    parents = {p.id: p for p in posts if p.id in wanted}
    missing = wanted - parents.keys()
    if missing:
        loaded = list(db.session.scalars(select(Post).where(Post.thread_id == thread.id, Post.id.in_(missing))
                                         .options(*_LOADS)))
        _adopt(loaded, thread)
        parents.update((p.id, p) for p in loaded)
    for p in posts:
        parent = parents.get(p.parent_id) if p.depth > 1 else None
        if parent is not None:
            name = "a removed post" if parent.deleted_at is not None else viewer.author_name(parent)
            views[p.id].reply_to = (parent.id, name)


def read_state(me: User, thread: Thread) -> Optional[ReadState]:
    """How far `me` has read `thread`. The session holds loaded rows only while they are referenced:
    the thread view keeps this one so later lookups of it in the same request need no query."""
    return db.session.get(ReadState, (me.id, thread.id))


def load(me: User, thread: Thread, *, page: int = 1, view: str = "tree") -> ThreadPage:
    """One page of a thread for `me` (who may read it: see services.get_thread)."""
    room = thread.room
    opening = db.session.scalar(
        select(Post).where(Post.thread_id == thread.id, Post.parent_id.is_(None)).options(*_LOADS))
    rs = read_state(me, thread)
    last_read = rs.last_read_post_id if rs else 0
    if view == "flat":
        total = max(thread.post_count - 1, 0)
        pages = max(1, -(-total // FLAT_PER_PAGE))
        page = min(max(page, 1), pages)
        posts = list(db.session.scalars(
            select(Post).where(Post.thread_id == thread.id, Post.parent_id.is_not(None))
            .order_by(Post.id.desc()).offset((page - 1) * FLAT_PER_PAGE).limit(FLAT_PER_PAGE).options(*_LOADS)))
    else:
        roots_total = db.session.scalar(
            select(func.count(Post.id)).where(Post.thread_id == thread.id, Post.depth == 1)) or 0
        pages = max(1, -(-roots_total // ROOTS_PER_PAGE))
        page = min(max(page, 1), pages)
        roots = list(db.session.scalars(
            select(Post.path).where(Post.thread_id == thread.id, Post.depth == 1)
            .order_by(Post.path).offset((page - 1) * ROOTS_PER_PAGE).limit(ROOTS_PER_PAGE + 1)))
        posts = []
        if roots:
            q = select(Post).where(Post.thread_id == thread.id, Post.path >= roots[0]).options(*_LOADS)
            if len(roots) > ROOTS_PER_PAGE:
                q = q.where(Post.path < roots[ROOTS_PER_PAGE])
            posts = list(db.session.scalars(q.order_by(Post.path)))
    everything = posts + [opening]
    atts = _attachments(thread, everything)
    _adopt(everything, thread)
    viewer = _Viewer(me, room, thread_id=thread.id)
    views = {p.id: viewer.view(p, atts.get(p.id, [])) for p in everything}
    if view == "flat":
        rows = [views[p.id] for p in posts]
        for v in rows:
            v.before, v.after = Markup('<li class="reply">'), Markup("</li>")
        _reply_to(viewer, thread, posts, views)
    else:
        rows = _tree(views, posts)
    shown = ([opening] if page == 1 else []) + posts
    unread = [p.id for p in shown if p.id > last_read and p.author_id != me.id]
    for pid in unread:
        views[pid].unread = True
    first_unread = min(unread, default=None)
    return ThreadPage(views[opening.id], rows, page, pages, view, first_unread, can_post=viewer.can_reply,
                      shown_ids=[opening.id] + [v.id for v in rows])

