"""Scheduled maintenance (issue 15): planned work told before it happens, to exactly the
customers of the components and regions it touches, with an iCalendar invitation, reminders
the scheduler keeps, and notices when it starts, ends or is called off."""
