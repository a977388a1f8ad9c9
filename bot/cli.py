"""``itabot``: the command line for operators.

Configuration problems end the command with one line naming the setting (exit status 2).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import sys
import time

import click
from sqlalchemy import select

from bot.config import ConfigError, Settings, load_settings

log = logging.getLogger("itabot.cli")


def _settings() -> Settings:
    try:
        settings = load_settings()
    except ConfigError as exc:
        click.echo(f"itabot: configuration error: {exc}", err=True)
        sys.exit(2)
    if settings.new_instance:
        click.echo(f"itabot: {settings.new_instance}", err=True)
    return settings


def _services(settings: Settings | None = None, migrate: bool = True, rename_office: bool = False):
    """Services for a command. Only ``serve`` and ``worker`` give the default office OFFICE_NAME: a command
    run from a shell without that variable must not rename the real office to the demo's name."""
    from bot.services import Services

    settings = settings or _settings()
    services = Services(settings)
    if migrate:
        services.db.upgrade()
    services.ensure_default_office(rename=rename_office)
    if migrate:
        _sync_kb(services)
    return services


def _sync_kb(services) -> dict[str, int]:
    """The shipped knowledge-base files into every office (entries edited in the console are kept)."""
    from integrity import store

    with services.db.session() as s:
        return store.sync_all(s)


def _line_problem(what: str, exc, forbidden: str | None = None) -> click.ClickException:
    """One line saying why LINE refused (or could not be reached), instead of a traceback."""
    if exc.status == 0:
        why = f"LINE could not be reached ({exc.message}); check the network and LINE_API_BASE_URL"
    elif exc.status == 401:
        why = "LINE refused the channel access token (401): check LINE_CHANNEL_ACCESS_TOKEN, or the office's token"
    elif exc.status == 403 and forbidden:
        why = f"LINE refused (403): {forbidden}"
    else:
        why = f"LINE API {exc.status}: {exc.message}"
    return click.ClickException(f"{what}: {why}")


UNREADABLE = ("credentials cannot be decrypted with this ITABOT_DATA_KEY (set the key they were saved with, or give "
              "the office its channel again in the console's office settings)")


def _office_id(services, slug: str | None) -> int:
    office = services.offices.any_by_slug(slug)
    if office is None:
        raise click.ClickException(f"no office with slug {slug!r} (see `itabot office list`)")
    if office.unreadable:  # what needs no LINE still works; LINE will refuse what does
        click.echo(f"itabot: warning: office {office.slug}: LINE {UNREADABLE}", err=True)
    return office.id


@click.group(help="itabot — the ITA LINE bot for Thai public offices.")
@click.version_option(package_name="itabot")
def main() -> None:
    pass


# -- serve / worker ------------------------------------------------------------------------------


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdecimal() or not 0 < int(raw) < 65536:
        click.echo(f"itabot: configuration error: {name} is malformed: expected a whole number, got {raw!r}", err=True)
        sys.exit(2)
    return int(raw)


@main.command(help="Migrate the database, then serve the web app (and, in embedded mode, the worker).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=None, type=click.IntRange(1, 65535), show_default="PORT or 8000")
@click.option("--workers", type=click.IntRange(1, 64), default=None,
              help="gunicorn workers (default WEB_CONCURRENCY or 1)")
def serve(host: str, port: int | None, workers: int | None) -> None:
    from gunicorn.app.base import BaseApplication

    port = port or _env_int("PORT", 8000)
    if not os.environ.get("PUBLIC_BASE_URL"):  # links and QR images point where this server really listens
        try:  # every interface, or this machine's own: "localhost" is what a browser here opens
            local = ipaddress.ip_address(host).is_unspecified or ipaddress.ip_address(host).is_loopback
        except ValueError:
            local = host == "localhost"
        shown = "localhost" if local else host
        os.environ["PUBLIC_BASE_URL"] = f"http://{shown}:{port}"
    settings = _settings()
    services = _services(settings, rename_office=True)
    services.close()
    workers = workers or _env_int("WEB_CONCURRENCY", 1)

    class _App(BaseApplication):
        def load_config(self) -> None:
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("threads", 8)
            self.cfg.set("accesslog", None)
            self.cfg.set("graceful_timeout", 10)
            if "control_socket_disable" in self.cfg.settings:  # gunicorn ≥ 25.1: no socket in ~/.gunicorn,
                self.cfg.set("control_socket_disable", True)  # one path shared by every instance on the machine

        def load(self):
            from bot.app import create_app

            return create_app(settings)

    if not settings.embedded:
        mode = "scaled (web only; run `itabot worker`)"
    elif settings.processing == "process":
        mode = "embedded (SQLite; a processing process beside the web process)"
    else:
        mode = "embedded (SQLite; processing threads in the web process)"
    click.echo(f"itabot: serving http://{host}:{port} — mode: {mode}", err=True)
    if settings.simulator_enabled:
        click.echo(f"itabot: simulator at http://{host}:{port}/simulator", err=True)
    _App().run()


@main.command(help="Process events: RQ jobs from Redis in scaled mode, plus a sweep of the database.")
@click.option("--burst", is_flag=True, help="Process what is waiting, then exit.")
def worker(burst: bool) -> None:
    from bot.app import create_app
    from bot.worker import Sweeper

    settings = _settings()
    app = create_app(settings, start_worker=False)
    services = app.extensions["itabot"]
    if burst:
        services.processor.drain()
        services.processor.sweep()
        if services.queue is None:
            return
    else:
        from integrity.store import MATCHERS

        MATCHERS.warm_in_background(services.db)
    if services.queue is None:
        click.echo("itabot: no REDIS_URL: polling the database for work (Ctrl-C to stop)", err=True)
        sweeper = Sweeper(services.processor, interval=1.0)
        sweeper.start()
        try:
            while True:
                sweeper._stop.wait(3600)
        except KeyboardInterrupt:
            sweeper.stop()
        return
    # SimpleWorker runs jobs in this process: no fork per job, so the database pool and the
    # gateways built once here are reused (a forked child must not share a PostgreSQL pool).
    from rq import SimpleWorker

    from bot import jobs

    class Worker(SimpleWorker):
        """RQ's SimpleWorker, but its control-channel thread wakes every second: RQ 3 lets it wait 60 s, and a
        worker told to stop (SIGTERM: a deploy, a restart) joins that thread before it exits, so it took up to a
        minute to go — longer than platforms wait before they kill it."""

        def subscribe(self) -> None:
            self.pubsub = self.connection.pubsub()
            self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
            handler = getattr(self, "_pubsub_exception_handler", None)  # RQ ≥ 2
            self.pubsub_thread = self.pubsub.run_in_thread(sleep_time=1.0, daemon=True,
                                                           **({"exception_handler": handler} if handler else {}))

    jobs.install(services)
    sweeper = Sweeper(services.processor, interval=5.0)
    sweeper.start()
    from redis.exceptions import ConnectionError as RedisDown
    from redis.exceptions import TimeoutError as RedisTimeout

    try:
        while True:
            try:
                Worker([services.queue], connection=services.queue.connection).work(
                    burst=burst, with_scheduler=not burst, logging_level="WARNING"
                )
                return
            except (RedisDown, RedisTimeout) as exc:
                # The database is the source of truth: while Redis is away the sweeper processes the
                # stored events (a few seconds later than the queue would); try Redis again shortly.
                if burst:  # what was stored has been processed from the database above
                    log.warning("Redis unreachable; queued jobs left for later",
                                extra={"error": exc.__class__.__name__})
                    return
                log.warning("Redis unreachable; processing from the database until it is back",
                            extra={"error": exc.__class__.__name__})
                time.sleep(5.0)
    finally:
        sweeper.stop()


# -- database ------------------------------------------------------------------------------------


@main.group(help="Database schema.")
def db() -> None:
    pass


@db.command("upgrade", help="Migrate the database to the newest schema.")
def db_upgrade() -> None:
    settings = _settings()
    from models.db import Database

    Database(settings.database_url).upgrade()
    counts = _sync_kb(_services(settings, migrate=False))
    click.echo(f"database is up to date; knowledge base: {counts['added']} added, {counts['updated']} updated")


# -- offices -------------------------------------------------------------------------------------


@main.group(help="Offices (one LINE channel and webhook path each).")
def office() -> None:
    pass


@office.command("add", help="Register an office. Without channel credentials it runs on the simulator.")
@click.option("--slug", required=True, help="Webhook path: /callback/<slug>")
@click.option("--name", required=True, help="e.g. สำนักงานเขตหนองจอก")
@click.option(
    "--channel-secret",
    envvar="NEW_OFFICE_CHANNEL_SECRET",
    default=None,
    help="or env NEW_OFFICE_CHANNEL_SECRET (keeps it out of shell history)",
)
@click.option("--access-token", envvar="NEW_OFFICE_ACCESS_TOKEN", default=None, help="or env NEW_OFFICE_ACCESS_TOKEN")
def office_add(slug: str, name: str, channel_secret: str | None, access_token: str | None) -> None:
    services = _services()
    try:
        services.offices.add(slug, name, channel_secret, access_token)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    base = services.settings.public_base_url
    click.echo(f"office {slug} added; webhook URL: {base}/callback/{slug}")


@office.command("list", help="List offices and their webhook URLs.")
def office_list() -> None:
    from models import Office

    services = _services()
    base = services.settings.public_base_url
    with services.db.Session() as s:
        for o in s.scalars(select(Office).order_by(Office.id)):
            info = services.offices.by_id(o.id)
            channel = "simulator" if info.simulated else f"LINE — {UNREADABLE}" if info.unreadable else "LINE"
            path = "/callback" if o.is_default else f"/callback/{o.slug}"
            default = " (default)" if o.is_default else ""
            click.echo(f"{o.slug}\t{o.name}{default}\t{channel}\t{base}{path}")


# -- console users ---------------------------------------------------------------------------------


@main.group(help="Console users.")
def user() -> None:
    pass


@user.command("add", help="Create a console user and print a one-time link to set the password.")
@click.option("--email", required=True)
@click.option("--role", required=True, type=click.Choice(
    ["admin", "complaint_officer", "survey_coordinator", "viewer", "supervisor"]))
@click.option("--office", "slugs", multiple=True,
              help="office slug (default office if omitted); a supervisor may repeat it")
def user_add(email: str, role: str, slugs: tuple[str, ...]) -> None:
    from bot.console import audit
    from bot.console.views import INVITE_TTL, create_invite
    from models import StaffOffice, StaffUser

    services = _services()
    email = email.strip().lower()
    if "@" not in email:
        raise click.ClickException("--email must be an email address")
    office_ids = [_office_id(services, slug) for slug in (slugs or (None,))]
    if len(office_ids) > 1 and role != "supervisor":
        raise click.ClickException("only a supervisor works for several offices")
    with services.db.session() as s:
        if s.scalar(select(StaffUser.id).where(StaffUser.email == email)) is not None:
            raise click.ClickException(f"a user {email} exists already")
        new = StaffUser(email=email, role=role)
        s.add(new)
        s.flush()
        for oid in office_ids:
            s.add(StaffOffice(user_id=new.id, office_id=oid))
        token = create_invite(s, new)
        audit.record(s, "user.created_cli", target=f"user:{new.id}", office_id=office_ids[0],
                     detail={"email": email, "role": role})
    days = INVITE_TTL.days
    click.echo(f"user {email} ({role}) created; set the password within {days} days at:")
    click.echo(f"{services.settings.public_base_url}/console/invite/{token}")


# -- surveys and staff ---------------------------------------------------------------------------


def _ce_date(value: str | None, name: str):
    """A date typed as YYYY-MM-DD or D/M/YYYY, CE or BE (2569 is read as 2026), Thai digits accepted;
    a clear error otherwise."""
    from bot.thaidate import parse_typed_date

    if value is None:
        return None
    parsed = parse_typed_date(value)
    if parsed is None:
        raise click.BadParameter(f"{value!r} is not a date like 2026-06-30 (CE) or 2569-06-30 (BE)",
                                 param_hint=name)
    return parsed


@main.group(help="ITA survey campaigns (IIT for staff, EIT for the public).")
def survey() -> None:
    pass


@survey.command("add", help="Add a campaign: the NACC's official link and its dates (CE or BE in, BE shown). "
                             "An office runs one campaign of each kind at a time.")
@click.option("--kind", required=True, type=click.Choice(["IIT", "EIT"], case_sensitive=False))
@click.option("--url", required=True, help="the official questionnaire link (https)")
@click.option("--opens", required=True, help="YYYY-MM-DD, CE or BE (2026-11-01 or 2569-11-01)")
@click.option("--closes", required=True, help="YYYY-MM-DD, CE or BE")
@click.option("--internal-deadline", default=None, help="YYYY-MM-DD, CE or BE: the office's own earlier target")
@click.option("--target", type=click.IntRange(1, 10_000_000), default=None, help="target number of respondents")
@click.option("--office", "slug", default=None)
def survey_add(kind, url, opens, closes, internal_deadline, target, slug) -> None:
    from bot.thaidate import be_date
    from surveys.campaigns import CampaignError, add_campaign

    services = _services()
    office_id = _office_id(services, slug)
    try:
        with services.db.session() as s:
            c = add_campaign(s, office_id, kind, url, _ce_date(opens, "--opens"), _ce_date(closes, "--closes"),
                             _ce_date(internal_deadline, "--internal-deadline"), target)
            cid, fy, o, cl = c.id, c.fiscal_year, c.opens_on, c.closes_on
    except CampaignError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"campaign {cid}: {kind.upper()} FY {fy}, open {be_date(o)} – {be_date(cl)}")


@survey.command("edit", help="Change a campaign's link, dates or target (the NACC extended the survey, a link was "
                              "mistyped); what is not given stays. When the dates change, its scheduled reminders "
                              "nobody edited are planned again from the new dates.")
@click.option("--campaign", "campaign_id", required=True, type=int)
@click.option("--url", default=None, help="the official questionnaire link (https)")
@click.option("--opens", default=None, help="YYYY-MM-DD, CE or BE")
@click.option("--closes", default=None, help="YYYY-MM-DD, CE or BE")
@click.option("--internal-deadline", default=None, help="YYYY-MM-DD, CE or BE; 'none' removes it")
@click.option("--target", type=click.IntRange(1, 10_000_000), default=None, help="target number of respondents")
def survey_edit(campaign_id, url, opens, closes, internal_deadline, target) -> None:
    from bot.thaidate import be_date
    from models import SurveyCampaign
    from surveys import reminders as rem
    from surveys.campaigns import CampaignError, edit_campaign

    services = _services()
    try:
        with services.db.session() as s:
            c = s.get(SurveyCampaign, campaign_id)
            if c is None:
                raise click.ClickException(f"no campaign {campaign_id}: see `itabot survey list`")
            internal = (None if (internal_deadline or "").strip().lower() == "none"
                        else _ce_date(internal_deadline, "--internal-deadline") or c.internal_deadline)
            before = rem.planned(s, c)
            changed = edit_campaign(s, c, url or c.url, _ce_date(opens, "--opens") or c.opens_on,
                                    _ce_date(closes, "--closes") or c.closes_on, internal,
                                    target or c.target)
            made, kept = rem.replan(s, c, before) if changed else (0, 0)
            line = f"campaign {c.id}: {c.kind} FY {c.fiscal_year}, open {be_date(c.opens_on)} – {be_date(c.closes_on)}"
    except CampaignError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(line)
    if changed:
        click.echo(f"reminders planned again from the new dates: {made}; edited ones kept as they were: {kept}"
                   + (" (check them: `itabot reminders list`)" if kept else ""))


@survey.command("list", help="List campaigns with their dates in the Buddhist Era.")
@click.option("--office", "slug", default=None)
def survey_list(slug) -> None:
    from bot.thaidate import be_date
    from models import SurveyCampaign

    services = _services()
    office_id = _office_id(services, slug)
    with services.db.Session() as s:
        rows = s.scalars(select(SurveyCampaign).where(SurveyCampaign.office_id == office_id)
                         .order_by(SurveyCampaign.opens_on)).all()
    if not rows:
        click.echo("no campaigns yet: add one with `itabot survey add`")
    for c in rows:
        extra = f" internal deadline {be_date(c.internal_deadline)}" if c.internal_deadline else ""
        target = f" target {c.target}" if c.target else ""
        click.echo(f"{c.id}\t{c.kind}\tFY {c.fiscal_year}\t{be_date(c.opens_on)} – {be_date(c.closes_on)}"
                   f"{extra}{target}\t{c.url}")


@survey.command("poster", help="Print an A4 poster (PDF or PNG, by the file name) with a tracked QR code.")
@click.option("--campaign", "campaign_id", required=True, type=int)
@click.option("--source", required=True, help="a name for where it hangs, e.g. counter-1 (clicks are counted per name)")
@click.option("--output", required=True, type=click.Path(dir_okay=False, writable=True))
def survey_poster(campaign_id: int, source: str, output: str) -> None:
    from models import SurveyCampaign
    from surveys.campaigns import link_for, poster_content
    from surveys.poster import render_poster_pdf, render_poster_png

    services = _services()
    with services.db.session() as s:
        c = s.get(SurveyCampaign, campaign_id)
        if c is None:
            raise click.ClickException(f"no campaign {campaign_id} (see `itabot survey list`)")
        link = link_for(s, c, f"poster:{source}")
        content = poster_content(s, c, link, services.settings.public_base_url)
    render = render_poster_pdf if output.lower().endswith(".pdf") else render_poster_png
    try:  # an http link (the default PUBLIC_BASE_URL) still prints: a local test print, said below
        data = render(content, allow_http=True)
    except ValueError as exc:
        raise click.ClickException(f"campaign {campaign_id} cannot be printed: {exc}") from None
    with open(output, "wb") as fh:
        fh.write(data)
    click.echo(f"poster written to {output}; its link: {content.link}")
    if not content.link.startswith("https://"):
        click.echo(f"note: the QR code points at {content.link}, not an https address: fine for a test print, "
                   "but set PUBLIC_BASE_URL to the bot's public https address before printing posters for "
                   "the public (the console refuses to make them until then)", err=True)


@main.group(help="Deadline reminders (within quiet hours and the LINE quota).")
def reminders() -> None:
    pass


@reminders.command(
    "schedule", help="Create a campaign's reminders from its dates (opening, twice a month, 7/3/1 days before)."
)
@click.option("--campaign", "campaign_id", required=True, type=int)
@click.option("--groups", "include_groups", is_flag=True, help="also push to the office's registered LINE groups")
def reminders_schedule(campaign_id: int, include_groups: bool) -> None:
    from bot.thaidate import be_datetime
    from models import SurveyCampaign
    from surveys.reminders import schedule

    services = _services()
    with services.db.session() as s:
        c = s.get(SurveyCampaign, campaign_id)
        if c is None:
            raise click.ClickException(f"no campaign {campaign_id} (see `itabot survey list`)")
        made = schedule(s, c, include_groups=include_groups)
        lines = [f"{r.label}\t{be_datetime(r.send_at)}\t{r.audience}{' + groups' if r.include_groups else ''}"
                 for r in made]
    click.echo("\n".join(lines) if lines else "nothing new: the campaign's reminders exist already")


@reminders.command("list", help="Reminders with their send times (BE, Bangkok) and status.")
@click.option("--campaign", "campaign_id", type=int, default=None)
def reminders_list(campaign_id: int | None) -> None:
    from bot.thaidate import be_datetime
    from models import Reminder
    from surveys.reminders import note_text

    services = _services()
    with services.db.Session() as s:
        stmt = select(Reminder).order_by(Reminder.send_at)
        if campaign_id:
            stmt = stmt.where(Reminder.campaign_id == campaign_id)
        for r in s.scalars(stmt):
            extra = f"\t{r.recipients} sent" if r.status == "sent" else ""
            note = f"\t{note_text(r.note, 'en')}" if r.note else ""
            label = r.label if r.festival is None else f"{r.festival} {int(r.label) + 543}"
            click.echo(f"{r.id}\t{label}\t{be_datetime(r.send_at)}\t{r.status}{extra}{note}")


@reminders.command("run-due", help="Send every reminder due now (or at --now) and exit: for cron and operators.")
@click.option("--now", "now_text", default=None, help="ISO-8601 moment, e.g. 2026-01-16T10:00:00+07:00")
def reminders_run_due(now_text: str | None) -> None:
    from datetime import UTC, datetime

    from surveys.reminders import run_due

    now = None
    if now_text:
        try:
            now = datetime.fromisoformat(now_text)
        except ValueError:
            raise click.BadParameter(f"{now_text!r} is not an ISO-8601 moment", param_hint="--now") from None
        if now.tzinfo is None:
            raise click.BadParameter("give a time zone, e.g. +07:00", param_hint="--now")
        now = now.astimezone(UTC)
    services = _services()
    if services.settings.simulator_enabled:  # offices without a LINE channel: their reminders go to the simulator
        from bot.app import create_app

        create_app(services.settings, services=services, start_worker=False, rename_office=False)
    bar: dict = {}

    def progress(done: int, total: int) -> None:
        if "bar" not in bar:
            bar["bar"] = click.progressbar(length=total, label="sending", file=sys.stderr)
            bar["bar"].__enter__()
        bar["bar"].update(1)

    try:
        outcomes = run_due(services, now, progress)
    except RuntimeError as exc:  # an office with no LINE channel while the simulator is off
        raise click.ClickException(f"{exc}: give the office its LINE channel in the console (office settings), or set "
                                   "ITABOT_SIMULATOR=true to try reminders in the simulator") from None
    if "bar" in bar:
        bar["bar"].__exit__(None, None, None)
    if not outcomes:
        click.echo("nothing due")
    for o in outcomes:
        skipped = f", {o.skipped_for_quota} skipped for quota" if o.skipped_for_quota else ""
        click.echo(f"reminder {o.reminder_id}: {o.recipients} recipients in {o.chunks_sent} calls{skipped}")


@main.group(help="No Gift festival reminders (New Year, Songkran, an office's own): dates, audience, on/off.")
def festivals() -> None:
    pass


@festivals.command("list", help="The office's festivals and their next reminders (BE, Bangkok).")
@click.option("--office", "slug", default=None)
def festivals_list(slug: str | None) -> None:
    from bot.thaidate import be_datetime
    from models import Office
    from surveys import festivals as fest
    from surveys.reminders import note_text

    services = _services()
    office_id = _office_id(services, slug)
    with services.db.Session() as s:
        office = s.get(Office, office_id)
        for f in fest.of_office(office):
            day, send = fest.typed_day(f.day), fest.typed_day(f.send)
            click.echo(f"{f.key}\t{f.name_th} / {f.name_en}\tday {day}\tsend {send} "
                       f"({f.days_before} days before)\t{f.audience}{' + groups' if f.groups else ''}\t"
                       f"{'on' if f.on else 'off'}")
        for r in fest.upcoming(s, office_id):
            note = f"\t{note_text(r.note, 'en')}" if r.note else ""
            click.echo(f"{r.id}\t{fest.name_of(office, r)}\t{be_datetime(r.send_at)}\t{r.audience}\t{r.status}{note}")


@festivals.command("set", help="Change a festival (by key), or add the office's own (--add with names and dates). "
                               "Dates: day/month (DD/MM; DD-MM and DD.MM are day/month too), repeated every year.")
@click.argument("key", required=False)
@click.option("--add", is_flag=True, help="add a festival of the office's own (needs --name-th/--name-en/--day/--send)")
@click.option("--name-th", default=None)
@click.option("--name-en", default=None)
@click.option("--day", default=None, help="the festival day, e.g. 01/01")
@click.option("--send", default=None, help="when the reminder goes out, 1–60 days before, e.g. 22/12")
@click.option("--audience", type=click.Choice(["staff", "followers"]), default=None,
              help="enrolled staff, or everyone who follows the account")
@click.option("--groups/--no-groups", default=None, help="also push to the registered LINE groups")
@click.option("--on/--off", "on", default=None)
@click.option("--office", "slug", default=None)
def festivals_set(key: str | None, add: bool, name_th, name_en, day, send, audience, groups, on, slug) -> None:
    from models import Office
    from surveys import festivals as fest

    if add == bool(key):
        raise click.UsageError("give a festival KEY to change, or --add (not both)")
    values = {"name_th": name_th, "name_en": name_en, "audience": audience, "groups": groups, "on": on}
    for name, raw in (("day", day), ("send", send)):
        if raw is not None:
            values[name] = fest.parse_day(raw)
            if values[name] is None:
                raise click.BadParameter(f"{raw!r} is not a day of the year: give day/month, e.g. 22/12",
                                         param_hint=f"--{name}")
    values = {k: v for k, v in values.items() if v is not None}
    services = _services()
    office_id = _office_id(services, slug)
    with services.db.session() as s:
        office = s.get(Office, office_id)
        error = fest.change(s, office, key, **values)
        if error is not None:  # nothing was changed
            raise click.ClickException(ERRORS.get(error, error))
    festivals_list.callback(slug)


@festivals.command("remove", help="Remove a festival of the office's own (New Year and Songkran: use set --off).")
@click.argument("key")
@click.option("--office", "slug", default=None)
def festivals_remove(key: str, slug: str | None) -> None:
    from models import Office
    from surveys import festivals as fest

    services = _services()
    office_id = _office_id(services, slug)
    with services.db.session() as s:
        error = fest.remove(s, s.get(Office, office_id), key)
        if error is not None:  # nothing was changed
            raise click.ClickException(ERRORS.get(error, error))
    click.echo(f"{key} removed; its unsent reminders are cancelled")


ERRORS = {
    "festival_unknown": "no such festival (see `itabot festivals list`)",
    "festival_builtin": "New Year and Songkran cannot be removed; turn them off with `set KEY --off`",
    "festival_bad_key": "a festival key is 2–24 characters a-z, 0-9 or _",
    "festival_bad_name": "give the festival's name in Thai and English (--name-th, --name-en; up to 60 characters)",
    "festival_bad_date": "give the festival day and the send day as day/month, e.g. 22/12 (not 29/02)",
    "festival_bad_gap": "the reminder must go out 1–60 days before the festival day",
    "festival_bad_audience": "the audience is staff or followers",
    "festival_bad_text": "a text must not be empty or longer than 4,000 characters",
    "festival_duplicate": "a festival with this name, or on this day for the same audience, already exists: "
                          "change that one with `itabot festivals set KEY` (see `itabot festivals list`)",
}


@main.group(help="People who follow the office's LINE account.")
def followers() -> None:
    pass


@followers.command("sync", help="Page through LINE's follower IDs into the user table (verified/premium accounts).")
@click.option("--office", "slug", default=None)
def followers_sync(slug: str | None) -> None:
    from bot.gateway import LineError
    from models import LineUser

    services = _services()
    office_id = _office_id(services, slug)
    gw = services.gateway(office_id)
    start, added, seen = None, 0, 0
    with click.progressbar(length=0, label="followers", show_pos=True, file=sys.stderr) as bar:
        while True:
            try:
                ids, start = gw.followers(start)
            except LineError as exc:
                raise _line_problem("followers sync", exc,
                                    "the follower list is only for verified or premium accounts") from None
            with services.db.session() as s:
                known = set(s.scalars(select(LineUser.line_user_id).where(
                    LineUser.office_id == office_id, LineUser.line_user_id.in_(ids))))
                for uid in ids:
                    if uid not in known:
                        s.add(LineUser(office_id=office_id, line_user_id=uid, following=True))
                        added += 1
            seen += len(ids)
            bar.length = seen
            bar.update(len(ids))
            if not start:
                break
    click.echo(f"{seen} followers, {added} new")


@main.group(help="Staff of an office (IIT respondents).")
def staff() -> None:
    pass


@staff.command("invite", help="Register a member of staff; the last line is their single-use code (30 days). "
                              "The same name and division again is the same person: no second code while "
                              "theirs works (see `staff reissue`).")
@click.option("--name", required=True)
@click.option("--division", required=True, help="ฝ่าย, e.g. ฝ่ายทะเบียน")
@click.option("--started", required=True, help="first day of service: 2015-03-01, or 1/3/2558 (D/M/YYYY BE)")
@click.option("--office", "slug", default=None)
def staff_invite(name: str, division: str, started: str, slug: str | None) -> None:
    from bot.thaidate import be_date
    from surveys.campaigns import CampaignError, parse_start_date, register_staff

    day = parse_start_date(started)
    if day is None:
        raise click.BadParameter(f"{started!r} is not a date like 2015-03-01 or 1/3/2558", param_hint="--started")
    services = _services()
    office_id = _office_id(services, slug)
    try:
        with services.db.session() as s:
            invited = register_staff(s, office_id, name, division, day)
            member_id = invited.member.id
    except CampaignError as exc:
        raise click.ClickException(str(exc)) from None
    if invited.status == "enrolled":
        raise click.ClickException(f"{name} ({division}) is already registered (#{member_id}) and enrolled on "
                                   "LINE: no code is needed (start date updated)")
    if invited.status == "has_code":
        raise click.ClickException(
            f"{name} ({division}) is already registered (#{member_id}) and their code works until "
            f"{be_date(invited.expires_at, 'en')}: no second code was made. If it was lost: "
            f"itabot staff reissue {member_id}")
    if invited.status == "renewed":
        click.echo(f"{name} ({division}) was already registered (#{member_id}) and their code had expired; "
                   "send this new code to the office's LINE account within 30 days:")
    else:
        click.echo(f"{name} ({division}) registered; send this code to the office's LINE account within 30 days:")
    click.echo(invited.code)


@staff.command("list", help="The office's staff: id, name, division, start date, on LINE or the code's state.")
@click.option("--office", "slug", default=None)
def staff_list(slug: str | None) -> None:
    from bot.thaidate import be_date
    from models import StaffMember
    from surveys.campaigns import working_code_expiry

    services = _services()
    office_id = _office_id(services, slug)
    with services.db.Session() as s:
        for m in s.scalars(select(StaffMember).where(StaffMember.office_id == office_id)
                           .order_by(StaffMember.division, StaffMember.name)):
            expires = None if m.line_user_id else working_code_expiry(s, m)
            state = ("enrolled" if m.line_user_id else
                     f"code until {be_date(expires, 'en')}" if expires else "no working code (staff reissue)")
            click.echo(f"{m.id}\t{m.name}\t{m.division}\t{be_date(m.started_on, 'en')}\t{state}")


@staff.command("reissue", help="A new code for a member not yet on LINE (lost or expired); the old one stops working.")
@click.argument("member_id", type=click.IntRange(min=1, max=2**31 - 1))
@click.option("--office", "slug", default=None)
def staff_reissue(member_id: int, slug: str | None) -> None:
    from models import StaffMember
    from surveys.campaigns import CampaignError, reissue_code

    services = _services()
    office_id = _office_id(services, slug)
    try:
        with services.db.session() as s:
            member = s.get(StaffMember, member_id)
            if member is None or member.office_id != office_id:
                raise click.ClickException(f"no member of staff #{member_id} in this office (see `itabot staff list`)")
            name, division = member.name, member.division
            code = reissue_code(s, member)
    except CampaignError as exc:
        raise click.ClickException(f"#{member_id}: {exc}") from None
    click.echo(f"{name} ({division}): new code, the earlier one no longer works; send it within 30 days:")
    click.echo(code)


# -- complaints ----------------------------------------------------------------------------------


def _moment(value: str | None):
    """--now: an ISO-8601 moment with a time zone, in UTC; None for the clock."""
    from datetime import UTC, datetime

    if not value:
        return None
    try:
        now = datetime.fromisoformat(value.strip())
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO-8601 moment", param_hint="--now") from None
    if now.tzinfo is None:
        raise click.BadParameter("give a time zone, e.g. +07:00", param_hint="--now")
    return now.astimezone(UTC)


def _day(value: str, name: str):
    from complaints.stats import parse_day

    try:
        return parse_day(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=name) from None


@main.group(help="The integrity knowledge base (integrity/kb/*.toml).")
def kb() -> None:
    pass


@kb.command("validate", help="Check every knowledge-base file; exit 1 with one line per problem.")
@click.option("--path", default=None, type=click.Path(file_okay=False, exists=True), help="another folder of entries")
def kb_validate(path: str | None) -> None:
    from integrity.kb import check

    problems = check(path)
    for p in problems:
        click.echo(p, err=True)
    if problems:
        sys.exit(1)
    click.echo("knowledge base is valid")


@kb.command("load", help="Copy the knowledge-base files into every office (console edits are kept).")
def kb_load() -> None:
    services = _services(migrate=False)
    services.db.upgrade()
    counts = _sync_kb(services)
    click.echo(f"knowledge base: {counts['added']} added, {counts['updated']} updated")


@main.command("ask", help="Answer a question from the knowledge base as the bot would: one JSON object "
              "{question, id, score, answer} (id null when not confident). Without QUESTION, reads one "
              "question per line from standard input and prints one JSON object per line.")
@click.argument("question", required=False)
@click.option("--json", "as_json", is_flag=True, help="print JSON (the only format; accepted for clarity)")
@click.option("--lang", type=click.Choice(["th", "en"]), default=None,
              help="language of the answer text (default: the question's, as on LINE; Thai if unclear)")
@click.option("--office", default=None, help="office slug (default office if omitted)")
def ask(question: str | None, as_json: bool, lang: str | None, office: str | None) -> None:
    import json

    from handlers.integrity import question_language
    from integrity import store

    services = _services()
    office_id = _office_id(services, office)
    with services.db.session() as s:
        matcher, by_id = store.MATCHERS.get(s, office_id)

    def one(q: str) -> str:
        r = matcher.match(q)
        answer = by_id[r.id].answer(lang or question_language(q) or "th") if r.id in by_id else None
        return json.dumps({"question": q, "id": r.id, "score": round(float(r.score), 4), "answer": answer},
                          ensure_ascii=False)

    if question is not None:
        click.echo(one(question))
        return
    for line in sys.stdin:
        q = line.strip()
        if q:
            click.echo(one(q))


@main.group(help="Complaints: statistics for publication, the retention policy, the officers' daily digest.")
def complaints() -> None:
    pass


@complaints.command(
    "export",
    short_help="Statistics of a month or period as xlsx or csv (no personal data).",
    help="Statistics of the cases received in a period (Bangkok days), for OIT publication: counts by "
    "category, channel, status and outcome, time to first action and to close. No personal data and no "
    "complaint text. Give either --month or --from and --to. Months and days may be CE or BE "
    "(2026-11 or 2569-11; 2026-11-30, 2569-11-30 or 30/11/2569), in Arabic or Thai digits.",
)
@click.option("--month", default=None, help="YYYY-MM, CE or BE (e.g. 2569-11)")
@click.option("--from", "from_text", default=None, help="first day: YYYY-MM-DD or D/M/YYYY, CE or BE")
@click.option("--to", "to_text", default=None, help="last day (included): YYYY-MM-DD or D/M/YYYY, CE or BE")
@click.option("--format", "fmt", type=click.Choice(["xlsx", "csv"], case_sensitive=False), default=None,
              help="default: from the --output file name")
@click.option("--output", required=True, type=click.Path(dir_okay=False, writable=True, allow_dash=True),
              help="file to write ('-' for standard output)")
@click.option("--office", "slugs", multiple=True, help="office slug (default office if omitted); may be repeated")
def complaints_export(month, from_text, to_text, fmt, output, slugs) -> None:
    from bot.console import audit
    from complaints.stats import month_range, summary, to_csv, to_xlsx

    if month and (from_text or to_text):
        raise click.UsageError("give either --month or --from/--to, not both")
    if month:
        try:
            start, end = month_range(month)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--month") from None
    elif from_text and to_text:
        start, end = _day(from_text, "--from"), _day(to_text, "--to")
        if end < start:
            raise click.BadParameter("the period ends before it starts", param_hint="--to")
    elif from_text or to_text:
        raise click.UsageError("--from and --to go together")
    else:
        raise click.UsageError("give the period: --month YYYY-MM, or --from and --to")
    if fmt is None:
        suffix = output.rsplit(".", 1)[-1].lower() if "." in output else ""
        if suffix not in ("xlsx", "csv"):
            raise click.UsageError("give --format xlsx or csv (the output file name does not say)")
        fmt = suffix
    fmt = fmt.lower()
    services = _services()
    office_ids = list(dict.fromkeys(_office_id(services, slug) for slug in (slugs or (None,))))
    with services.db.session() as s:
        sm = summary(s, office_ids, start, end)
        for oid in office_ids:
            audit.record(s, "complaint.exported_cli", office_id=oid,
                         detail={"from": start.isoformat(), "to": end.isoformat(), "format": fmt})
    data = to_xlsx(sm) if fmt == "xlsx" else to_csv(sm).encode("utf-8")
    with click.open_file(output, "wb") as fh:
        fh.write(data)
    if output != "-":
        click.echo(f"{sm.total} cases from {start.isoformat()} to {end.isoformat()} → {output} ({fmt})")


@complaints.command(
    "purge",
    short_help="Apply the retention policy now (evidence and identity of long-closed cases).",
    help="Apply the retention policy now: remove the evidence and the reporter's identity of cases closed "
    "longer ago than their office keeps them (default 365 days), and evidence left behind by drafts that "
    "no longer exist. The workers also do this every hour. Prints and logs references and counts, never content.",
)
@click.option("--now", "now_text", default=None, help="ISO-8601 moment, e.g. 2027-12-01T09:00:00+07:00")
def complaints_purge(now_text: str | None) -> None:
    from bot.logs import setup_logging
    from complaints.retention import run_purge

    now = _moment(now_text)
    setup_logging()
    result = run_purge(_services(), now)
    for c in result.cases:
        click.echo(f"{c['reference']}\tevidence removed: {c['evidence']}\t"
                   f"identity removed: {'yes' if c['identity'] else 'no'}")
    click.echo(f"{len(result.cases)} cases purged, {result.draft_files} files of abandoned drafts removed")


@complaints.command(
    "digest",
    short_help="Queue today's open/overdue digest for the complaint officers.",
    help="Queue today's digest for the complaint officers (open and overdue counts) of every office that has "
    "open cases and has not had it today; from 08:30 Bangkok time. The workers do this every minute; the "
    "running itabot sends what is queued.",
)
@click.option("--now", "now_text", default=None, help="ISO-8601 moment, e.g. 2026-11-02T08:30:00+07:00")
def complaints_digest(now_text: str | None) -> None:
    from complaints.digest import digest_day, run_digest
    from models import utcnow

    now = _moment(now_text)
    if digest_day(now or utcnow()) is None:
        click.echo("too early: the digest goes out from 08:30 Bangkok time")
        return
    n = run_digest(_services(), now)
    click.echo(f"digest queued for {n} offices" if n else
               "nothing queued (sent already today, no open cases, or no linked officers)")


@main.group(help="The gift register (gifts staff reported on LINE).")
def gifts() -> None:
    pass


@gifts.command(
    "export",
    short_help="The gift register of a period as xlsx (Thai headers, Buddhist-Era dates).",
    help="The gifts reported as received from --from to --to (both included) as an xlsx workbook for the "
    "6- and 12-month reports: reference, date received, giver, item, value, what was done, who reported. "
    "Days may be CE or BE (2025-10-01, 2568-10-01 or 1/10/2568), in Arabic or Thai digits.",
)
@click.option("--from", "from_text", required=True, help="first day: YYYY-MM-DD or D/M/YYYY, CE or BE")
@click.option("--to", "to_text", required=True, help="last day (included): YYYY-MM-DD or D/M/YYYY, CE or BE")
@click.option("--output", required=True, type=click.Path(dir_okay=False, writable=True, allow_dash=True),
              help="file to write ('-' for standard output)")
@click.option("--office", "slugs", multiple=True, help="office slug (default office if omitted); may be repeated")
def gifts_export(from_text, to_text, output, slugs) -> None:
    from bot.console import audit
    from integrity import register
    from models import Office

    start, end = _day(from_text, "--from"), _day(to_text, "--to")
    if end < start:
        raise click.BadParameter("the period ends before it starts", param_hint="--to")
    services = _services()
    office_ids = list(dict.fromkeys(_office_id(services, slug) for slug in (slugs or (None,))))
    with services.db.session() as s:
        rows = register.reports(s, office_ids, start, end)
        names = [s.get(Office, oid).name for oid in office_ids]
        for oid in office_ids:
            audit.record(s, "gifts.exported_cli", office_id=oid,
                         detail={"from": start.isoformat(), "to": end.isoformat(), "reports": len(rows)})
    data = register.to_xlsx(rows, start, end, names)
    with click.open_file(output, "wb") as fh:
        fh.write(data)
    if output != "-":
        click.echo(f"{len(rows)} gift reports from {start.isoformat()} to {end.isoformat()} → {output}")


# -- rich menus ----------------------------------------------------------------------------------


@main.group(help="Rich menus.")
def richmenu() -> None:
    pass


@richmenu.command("deploy", help="Create the public and staff rich menus and set the public one as default.")
@click.option("--office", "slug", default=None, help="office slug (default office if omitted)")
def richmenu_deploy(slug: str | None) -> None:
    from bot.app import create_app
    from bot.richmenu import deploy

    settings = _settings()
    _services(settings).close()  # migrate first
    app = create_app(settings, start_worker=False, rename_office=False)
    services = app.extensions["itabot"]
    office_id = _office_id(services, slug)
    from bot.gateway import LineError

    try:
        ids = deploy(services, office_id)
    except LineError as exc:
        raise _line_problem("richmenu deploy", exc) from None
    click.echo(f"public rich menu: {ids['public']} (default)\nstaff rich menu: {ids['staff']}")


# -- keys ----------------------------------------------------------------------------------------


@main.command(help="Print fresh SECRET_KEY and ITABOT_DATA_KEY values for the environment.")
def keygen() -> None:
    import secrets

    from cryptography.fernet import Fernet

    click.echo(f"SECRET_KEY={secrets.token_urlsafe(48)}")
    click.echo(f"ITABOT_DATA_KEY={Fernet.generate_key().decode()}")


if __name__ == "__main__":  # pragma: no cover
    main()
