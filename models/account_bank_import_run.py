from odoo import api, fields, models

RUN_STATES = [
    ("running", "Running"),
    ("done", "Done"),
    ("failed", "Failed"),
]
RUN_TRIGGERS = [
    ("first", "After connecting"),
    ("cron", "Scheduled"),
    ("manual", "Fetch transactions"),
    ("callback", "Salt Edge fetched"),
]


class AccountBankImportRun(models.Model):
    """One import of a bank connection's transactions: when, how many, and what went wrong.

    Written by the import itself (as superuser); read-only for everybody else.
    """

    _name = "account.bank.import.run"
    _description = "Bank Transaction Import Run"
    _order = "date_start desc, id desc"
    _rec_name = "date_start"

    connection_id = fields.Many2one(
        "account.bank.connection", required=True, ondelete="cascade", index=True, readonly=True
    )
    company_id = fields.Many2one(related="connection_id.company_id", store=True, index=True)
    trigger = fields.Selection(RUN_TRIGGERS, required=True, default="cron", readonly=True)
    state = fields.Selection(RUN_STATES, required=True, default="running", readonly=True)
    date_start = fields.Datetime(
        string="Started", required=True, default=fields.Datetime.now, readonly=True
    )
    date_end = fields.Datetime(string="Ended", readonly=True)
    duration = fields.Float(string="Seconds", compute="_compute_duration", digits=(16, 1))
    fetched_count = fields.Integer(
        string="Fetched", readonly=True, help="Transactions Salt Edge sent, posted or not."
    )
    created_count = fields.Integer(
        string="Created", readonly=True, help="New statement lines, the opening line included."
    )
    duplicate_count = fields.Integer(
        string="Skipped as duplicate",
        readonly=True,
        help="Transactions already in the journal: imported before, never twice.",
    )
    matched_count = fields.Integer(
        string="Matched to earlier lines",
        readonly=True,
        help="Transactions the journal already had from elsewhere (a file import, a former "
        "connection of the same account): matched by date and amount, one line each, and "
        "not created again.",
    )
    pending_count = fields.Integer(
        string="Pending",
        readonly=True,
        help="Transactions the bank has not booked yet: imported once they are posted.",
    )
    skipped_count = fields.Integer(
        string="Not importable",
        readonly=True,
        help="Transactions Salt Edge sent that could not become statement lines (no valid id, "
        "date or amount, or a value the database refused). They are skipped for good, so "
        "that they never block the import: book them by hand if the bank did book them.",
    )
    skipped_note = fields.Text(
        string="Not imported",
        readonly=True,
        help="The transactions skipped: their Salt Edge id and date as Salt Edge sent them, "
        "and why.",
    )
    error = fields.Text(readonly=True)
    fetch_finished = fields.Boolean(
        string="Salt Edge's fetch finished",
        readonly=True,
        help="Salt Edge had finished fetching from the bank when this run ended; before that "
        "the opening balance and the balance check wait.",
    )

    saltedge_fetch_key = fields.Char(
        string="Salt Edge's fetch when read",
        readonly=True,
        copy=False,
        help="Where Salt Edge's fetch stood when this run last read the connection and its "
        "accounts. The waiting page's next slice of the run reads them again only once the "
        "fetch has moved.",
    )

    @api.depends("date_start", "date_end")
    def _compute_duration(self):
        for run in self:
            if run.date_start and run.date_end:
                run.duration = (run.date_end - run.date_start).total_seconds()
            else:
                run.duration = 0.0
