import json
import logging

from errorkit import RequestContextFilter


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": record.request_id,
            "code": record.code,
            "workspace_id": record.workspace_id,
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line)


handler = logging.StreamHandler()
handler.setFormatter(JSONFormatter())
handler.addFilter(RequestContextFilter())  # your own records get the fields too
logging.basicConfig(level=logging.INFO, handlers=[handler])
