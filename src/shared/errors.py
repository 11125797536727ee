"""Domain exceptions. Adapters translate library errors into these; services never see boto3 or
pymysql exceptions."""


class TransientError(Exception):
    """The invocation should fail so Lambda/EventBridge deliver it again (nothing half-written)."""


class LedgerUnavailable(TransientError):
    """The ledger could not be reached or the transaction could not be completed."""


class SessionsUnavailable(TransientError):
    """The sessions table could not be written within the retry budget."""


class RegionStateUnavailable(TransientError):
    """The region-control item could not be read."""


class ParkingUnavailable(TransientError):
    """The parked-events queue refused the message: fail so the event is retried, not lost."""


class DocumentsUnavailable(TransientError):
    """The documents bucket could not be reached (or does not exist)."""


class MonitoringUnavailable(TransientError):
    """A replication figure could not be read (CloudWatch, RDS, a table's description, a canary):
    the figure is reported missing."""


class DeadlineExceeded(TransientError):
    """Too little of the Lambda deadline is left for another attempt."""


class RefundAwaitingCharge(TransientError):
    """A young refund whose charge is not in the ledger yet (it may be in flight right behind it):
    fail the invocation so Lambda delivers it again; once the event is old enough it is parked."""


class LedgerReadOnly(Exception):
    """The database answered read-only (MySQL error 1290): this region is not the writer."""


class PaymentRejected(Exception):
    """A valid event the ledger refuses on business grounds (for example an over-refund)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class OriginalPaymentNotFound(PaymentRejected):
    """A refund whose charge is not (yet) in the ledger: retried while young, then parked for
    redrive; never rejected."""


class SchemaMigrationError(Exception):
    """The ledger's schema could not be brought up to date (a migration failed, another is
    running, an applied migration was edited, the database is read-only). The message says
    which and what to do; it never carries a password."""
