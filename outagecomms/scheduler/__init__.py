"""Keeping promises over time: what is due (``due``), the daemon and its cron form ``tick``,
leadership between daemons, and notices to the commander."""
