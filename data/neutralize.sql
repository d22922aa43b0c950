-- A copied database (staging, test) must not talk to Salt Edge with production's keys.
DELETE FROM ir_config_parameter
 WHERE key IN ('account_bank_connection.saltedge_app_id',
               'account_bank_connection.saltedge_secret',
               'account_bank_connection.saltedge_private_key');
DELETE FROM account_bank_credential;
-- What a system administrator typed in the settings and a save never applied.
UPDATE res_config_settings SET saltedge_secret = NULL, saltedge_private_key = NULL
 WHERE saltedge_secret IS NOT NULL OR saltedge_private_key IS NOT NULL;
UPDATE ir_cron SET active = false
 WHERE id IN (SELECT res_id FROM ir_model_data
               WHERE module = 'account_bank_connection' AND model = 'ir.cron');
