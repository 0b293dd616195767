"""The sandbox's fixed credentials: public, fake, and good for nothing but the sandbox.

They are not secrets. The fake DingTalk and Kingdee servers accept exactly these and
refuse anything else, so connectors can be tested for both the happy path and bad
credentials. Real systems' credentials come from the environment or Prefect Secret
blocks, never from code.
"""

from __future__ import annotations

from typing import Final

# DingTalk old API: GET /gettoken?appkey=&appsecret= (source-systems.md §1.1)
DINGTALK_APP_KEY: Final = "dingoafinsandbox"
DINGTALK_APP_SECRET: Final = "sandbox-dingtalk-secret-not-a-secret"

# Kingdee AuthService.LoginByAppSecret: [acctID, userName, appId, appSecret, lcid] (source-systems.md §7.2)
KINGDEE_ACCT_ID: Final = "6620sandbox0001"
KINGDEE_USERNAME: Final = "oafin-sandbox"
KINGDEE_APP_ID: Final = "300001_oafinSandboxAppId"
KINGDEE_APP_SECRET: Final = "sandbox-kingdee-secret-not-a-secret"
KINGDEE_LCID: Final = 2052  # zh-CN

# Hesine/Ekuaibao: POST /api/openapi/v1/auth/getAccessToken {appKey, appSecurity} (source-systems.md §6.1)
HESINE_APP_KEY: Final = "oafin-sandbox-ekb-key"
HESINE_APP_SECURITY: Final = "sandbox-hesine-security-not-a-secret"
