"""DingTalk (钉钉): OA approvals."""
