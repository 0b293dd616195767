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

# DingTalk v1.0: POST /v1.0/oauth2/accessToken {appKey, appSecret} (source-systems.md §1.1). The
# same company's DingTalk app: an app's key and secret serve the old and the v1.0 API alike.
DINGTALK_V1_APP_KEY: Final = DINGTALK_APP_KEY
DINGTALK_V1_APP_SECRET: Final = DINGTALK_APP_SECRET
# Yonyou YonBIP self-built app: GET .../selfAppAuth/getAccessToken?appKey=&timestamp=&signature=
# (source-systems.md §8.1; real-clients.md §1.9, §2.6)
YONYOU_APP_KEY: Final = "yyoafinsandboxappkey0001"
YONYOU_APP_SECRET: Final = "sandbox-yonyou-secret-not-a-secret"
YONYOU_ACCBOOK_CODE: Final = "C01"  # the sandbox company's 账簿 (accbookCode = company_code)
# WeCom: GET /cgi-bin/gettoken?corpid=&corpsecret= (source-systems.md §2.1)
WECOM_CORP_ID: Final = "wwoafinsandbox0001"
WECOM_CORP_SECRET: Final = "sandbox-wecom-secret-not-a-secret"
# Feishu: POST /open-apis/auth/v3/tenant_access_token/internal {app_id, app_secret} (source-systems.md §3.1)
FEISHU_APP_ID: Final = "cli_oafinsandbox0001"
FEISHU_APP_SECRET: Final = "sandbox-feishu-secret-not-a-secret"
# Weaver e-cology 9: the app id registered in ECOLOGY_BIZ_EC, sent as the ``appid`` header of
# regist/applytoken and every call (source-systems.md §4.1). The server-issued secret and RSA key
# (``secrit``/``spk``) come from regist at run time; the user impersonated is a config key.
WEAVER_APP_ID: Final = "oafin-sandbox-weaver-app"
WEAVER_ADMIN_USERID: Final = "1"  # e-cology's built-in sysadmin (HrmResource id 1)
# Seeyon REST: POST /seeyon/rest/token {"userName", "password"} (source-systems.md §5)
SEEYON_USER_NAME: Final = "oafin-rest"
SEEYON_PASSWORD: Final = "sandbox-seeyon-password-not-a-secret"
# Hesine/Ekuaibao: POST /api/openapi/v1/auth/getAccessToken {appKey, appSecurity} (source-systems.md §6.1)
HESINE_APP_KEY: Final = "oafin-sandbox-ekb-key"
HESINE_APP_SECURITY: Final = "sandbox-hesine-security-not-a-secret"
