"""HTML of the connect widget's screens, in English and Dutch.

Plain forms, no JavaScript: a browser, a test with ``requests`` or ``complete_connect``
all drive them the same way. Every page names its screen in
``<meta name="sandbox-screen">`` so a driver knows where it is.
"""

from html import escape

TEXTS = {
    "en": {
        "title": "Connect your bank",
        "by": "Secured by Salt Edge (sandbox)",
        "cancel": "Cancel",
        "proceed": "Proceed",
        "confirm": "Confirm",
        "continue": "Continue",
        "login": "Log in",
        "return": "Return to your application",
        "provider_head": "Choose your bank",
        "type_head": "Which account do you want to connect?",
        "business": "Business",
        "personal": "Personal",
        "type_missing": "Choose Business or Personal to continue.",
        "terms_head": "Your consent",
        "terms_text": "I agree to Salt Edge's Terms of Service and Privacy Policy and allow "
        "this application to read my account information (accounts and transactions) "
        "for {days} days.",
        "terms_missing": "Please tick the box to accept the terms before you continue.",
        "wait_head": "Do not close this screen!",
        "wait_text": "The provider is connecting to your bank. Loading can take a while: please "
        "wait and do not refresh or close this page.",
        "login_head": "How do you want to log in?",
        "itsme": "itsme app",
        "card_reader": "Card reader & bank card",
        "login_missing": "Choose a way to log in.",
        "card_head": "Card reader",
        "card_text": "Insert your bank card in the card reader, press LOGIN and enter the "
        "challenge {challenge}. Type the 8-digit response below.",
        "card_response": "Response code",
        "card_invalid": "The response code must be 8 digits.",
        "accounts_head": "Grant access to your accounts",
        "accounts_text": "Check that the right accounts are selected.",
        "accounts_missing": "Select at least one account.",
        "activating_head": "The bank connection is being activated. Do not close this screen!",
        "activating_text": "Loading can take a while: please wait and do not refresh or close "
        "this page.",
        "success_head": "Your bank is connected",
        "success_text": "Connected until {until}.",
        "expired_head": "This session has expired",
        "expired_text": "Start connecting your bank again from your application.",
        "unknown_head": "This link is not valid",
    },
    "nl": {
        "title": "Verbind je bank",
        "by": "Beveiligd door Salt Edge (sandbox)",
        "cancel": "Annuleren",
        "proceed": "Doorgaan",
        "confirm": "Bevestigen",
        "continue": "Verder",
        "login": "Aanmelden",
        "return": "Terug naar je applicatie",
        "provider_head": "Kies je bank",
        "type_head": "Welke rekening wil je verbinden?",
        "business": "Business",
        "personal": "Persoonlijk",
        "type_missing": "Kies Business of Persoonlijk om door te gaan.",
        "terms_head": "Je toestemming",
        "terms_text": "Ik ga akkoord met de gebruiksvoorwaarden en het privacybeleid van Salt "
        "Edge en geef deze applicatie toegang tot mijn rekeninginformatie (rekeningen en "
        "transacties) gedurende {days} dagen.",
        "terms_missing": "Vink het vakje aan om de voorwaarden te aanvaarden.",
        "wait_head": "Sluit niet je scherm!",
        "wait_text": "De provider maakt verbinding met je bank. Het laden kan soms even duren, "
        "gelieve te wachten en deze pagina niet te vernieuwen of te sluiten.",
        "login_head": "Hoe wil je je aanmelden?",
        "itsme": "itsme-app",
        "card_reader": "Kaartlezer & bankkaart",
        "login_missing": "Kies een manier om je aan te melden.",
        "card_head": "Kaartlezer",
        "card_text": "Steek je bankkaart in de kaartlezer, druk op LOGIN en geef de code "
        "{challenge} in. Typ hieronder het antwoord van 8 cijfers.",
        "card_response": "Antwoordcode",
        "card_invalid": "De antwoordcode bestaat uit 8 cijfers.",
        "accounts_head": "Verleen toegang tot je rekeningen",
        "accounts_text": "Check of de juiste rekening is geselecteerd.",
        "accounts_missing": "Selecteer minstens één rekening.",
        "activating_head": "De bankverbinding wordt geactiveerd. Sluit niet je scherm!",
        "activating_text": "Het laden kan soms even duren, gelieve te wachten en deze pagina "
        "niet te vernieuwen of te sluiten.",
        "success_head": "Je bank is verbonden",
        "success_text": "Verbonden tot {until}.",
        "expired_head": "Deze sessie is verlopen",
        "expired_text": "Start het verbinden van je bank opnieuw vanuit je applicatie.",
        "unknown_head": "Deze link is niet geldig",
    },
}

STYLE = """
body{font-family:Arial,Helvetica,sans-serif;background:#eef1f5;margin:0;color:#222}
.box{max-width:460px;margin:40px auto;background:#fff;border-radius:10px;padding:28px;
box-shadow:0 2px 12px rgba(0,0,0,.12)}
.bank{display:flex;align-items:center;gap:12px;margin-bottom:18px}
.bank img{width:40px;height:40px}
h1{font-size:20px;margin:0 0 14px}
label.choice{display:block;border:1px solid #ccd;border-radius:6px;padding:10px;margin:8px 0}
.error{background:#fde8e8;color:#a00;padding:8px;border-radius:6px;margin:10px 0}
.primary{background:#0b63ce;color:#fff;border:0;border-radius:6px;padding:10px 18px;
font-size:15px;cursor:pointer}
.cancel{background:none;border:0;color:#555;text-decoration:underline;cursor:pointer;
margin-top:14px}
.foot{color:#888;font-size:12px;margin-top:20px}
.iban{color:#555;font-family:monospace}
"""


def texts(locale):
    """The texts of a locale ("nl..." gives Dutch, anything else English)."""
    return TEXTS["nl"] if (locale or "").lower().startswith("nl") else TEXTS["en"]


def format_iban(iban):
    return " ".join(iban[index : index + 4] for index in range(0, len(iban), 4))


def page(screen, t, body, provider=None, refresh_url=None, cancel_form=None):
    """A whole HTML page for ``screen``."""
    head = [
        '<meta charset="utf-8">',
        f'<meta name="sandbox-screen" content="{escape(screen)}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(t['title'])}</title>",
        f"<style>{STYLE}</style>",
    ]
    if refresh_url:
        head.append(f'<meta http-equiv="refresh" content="2;url={escape(refresh_url)}">')
    bank = ""
    if provider is not None:
        bank = (
            f'<div class="bank"><img alt="" src="/sandbox/logos/{escape(provider.code)}.svg">'
            f"<strong>{escape(provider.name)}</strong></div>"
        )
    return (
        f"<!DOCTYPE html><html><head>{''.join(head)}</head><body><div class=\"box\">"
        f"{bank}{body}{cancel_form or ''}<p class=\"foot\">{escape(t['by'])}</p>"
        "</div></body></html>"
    )


def form(action, step, inner, button, button_name="action", button_value="submit"):
    """A POST form for a step: hidden step field, the inner fields and a primary button."""
    return (
        f'<form method="post" action="{escape(action)}">'
        f'<input type="hidden" name="step" value="{escape(step)}">{inner}'
        f'<p><button class="primary" type="submit" name="{button_name}" '
        f'value="{escape(button_value)}">{escape(button)}</button></p></form>'
    )


def cancel_form(action, step, t):
    return (
        f'<form method="post" action="{escape(action)}">'
        f'<input type="hidden" name="step" value="{escape(step)}">'
        f'<button class="cancel" type="submit" name="action" value="cancel">'
        f"{escape(t['cancel'])}</button></form>"
    )


def error_box(message):
    return f'<p class="error">{escape(message)}</p>' if message else ""


def radio(name, value, label, checked=False):
    mark = " checked" if checked else ""
    return (
        f'<label class="choice"><input type="radio" name="{escape(name)}" '
        f'value="{escape(value)}"{mark}> {escape(label)}</label>'
    )


def checkbox(name, value, label, detail="", checked=True):
    mark = " checked" if checked else ""
    extra = f' <span class="iban">{escape(detail)}</span>' if detail else ""
    return (
        f'<label class="choice"><input type="checkbox" name="{escape(name)}" '
        f'value="{escape(value)}"{mark}> {escape(label)}{extra}</label>'
    )


def message_page(screen, t, head, text, link=None):
    """A page with a message and, when given, a link back to the application."""
    body = f"<h1>{escape(head)}</h1><p>{escape(text)}</p>"
    if link:
        body += f'<p><a class="primary" href="{escape(link)}">{escape(t["return"])}</a></p>'
    return page(screen, t, body)
