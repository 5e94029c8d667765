"""Known bots and crawlers, by user agent, from the crawler-user-agents list.

The list (github.com/monperrus/crawler-user-agents, packaged as `crawler-user-agents`) is the
one most trackers and the `isbot` library build on: ~1,500 patterns, kept up to date by its
community, covering search engines (`Googlebot/2.1`), monitors, scrapers and headless browsers
(`HeadlessChrome`). A request whose `User-Agent` matches is a bot's: its events are stored in
`bot_events`, counted, and kept out of `frontend_events`, the live state and every report.

Matching costs ~90 µs per user agent (a few large regular expressions); browsers send a few
thousand distinct user agents, so answers are cached by user agent.
"""

from __future__ import annotations

import functools

import crawleruseragents

CACHE_SIZE = 4096


@functools.lru_cache(maxsize=CACHE_SIZE)
def is_bot(user_agent: str) -> bool:
    """True when `user_agent` matches a known bot, crawler or headless browser."""
    return bool(user_agent) and crawleruseragents.is_crawler(user_agent)
