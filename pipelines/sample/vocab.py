"""Word lists that make the sample read like a Dutch/Belgian B2B CRM.

Kept in code (never read from disk at run time) so the generator is self-contained. Every
name comes with an ASCII slug used to build e-mail addresses and domains.
"""

from __future__ import annotations

import unicodedata

SELLER_DOMAIN = "kompassoftware.nl"

# fmt: off
TEAM_REGIONS = (
    "Noord", "Zuid", "Randstad", "Oost", "West", "Midden", "Brabant", "Limburg", "Twente",
    "Vlaanderen", "Antwerpen", "Gelderland", "Friesland", "Zeeland", "Utrecht", "Rijnmond",
    "Veluwe", "Kempen", "Achterhoek", "Drenthe",
)

FIRST_NAMES = (
    "Jan", "Pieter", "Kees", "Willem", "Thomas", "Daan", "Bram", "Lars", "Sven", "Ruud",
    "Mark", "Dennis", "Joost", "Bas", "Niels", "Tim", "Stefan", "Erik", "Frank", "Martijn",
    "Jeroen", "Rob", "Koen", "Wouter", "Sander", "Hans", "Gerrit", "Henk", "Mohamed", "Yusuf",
    "Jürgen", "Luuk", "Sem", "Finn", "Jesse", "Anne", "Sanne", "Lotte", "Femke", "Eva",
    "Lisa", "Iris", "Marieke", "Esther", "Linda", "Petra", "Inge", "Karin", "Monique",
    "Saskia", "Ingrid", "Nicole", "Sophie", "Emma", "Julia", "Fleur", "Noor", "Zoë", "Chloë",
    "Anaïs", "Fatima", "Ayşe", "Nina", "Marloes", "Laura", "Renée", "Els", "Hanneke",
    "Mieke", "Joke",
)

LAST_NAMES = (
    "de Vries", "Jansen", "van den Berg", "Bakker", "Visser", "Smit", "Meijer", "de Boer",
    "Mulder", "de Groot", "Bos", "Vos", "Peters", "Hendriks", "van Leeuwen", "Dekker",
    "Brouwer", "de Wit", "Dijkstra", "Smits", "de Graaf", "van der Meer", "van der Linden",
    "Kok", "Jacobs", "de Haan", "Vermeulen", "van den Heuvel", "van der Veen",
    "van den Broek", "de Bruijn", "van der Heijden", "Schouten", "van Beek", "Willems",
    "van Vliet", "van de Ven", "Hoekstra", "Maas", "Verhoeven", "Koster", "van Dam",
    "van der Wal", "Prins", "Blom", "Huisman", "Peeters", "Janssens", "Maes", "Claes",
    "Goossens", "Wouters", "Yılmaz", "El Amrani", "Öztürk", "Müller", "Schmidt", "Nguyen",
    "Kowalski", "Bouzid", "Tahiri", "Çelik", "van 't Hof", "Sørensen",
)

# Company name parts: family names, sector words (with their industry), places per country.
COMPANY_SURNAMES = (
    "Van Dijk", "De Vries", "Jansen", "Bakker", "Visser", "Smit", "Meijer", "De Boer",
    "Mulder", "De Groot", "Bos", "Vos", "Hendriks", "Van Leeuwen", "Dekker", "Brouwer",
    "De Wit", "Dijkstra", "De Graaf", "Van der Meer", "Kok", "De Haan", "Vermeulen",
    "Van den Heuvel", "Van der Veen", "Schouten", "Van Beek", "Willems", "Hoekstra", "Maas",
    "Verhoeven", "Koster", "Prins", "Blom", "Huisman", "Peeters", "Janssens", "Maes",
    "Claes", "Goossens", "Wouters", "Van Damme", "Verbeke", "Mertens", "Lambrecht",
    "Hermans", "Timmermans", "Kuipers", "Postma", "Veenstra", "Van Wijk", "Boersma",
    "Terpstra", "Kramer", "Van Dam", "Schipper", "Van Rijn", "Zwart", "Groen", "Evers",
)

SECTORS: tuple[tuple[str, str], ...] = (
    ("Bouw", "Bouw"), ("Bouwgroep", "Bouw"), ("Installatietechniek", "Installatie"),
    ("Installaties", "Installatie"), ("Elektro", "Installatie"), ("Techniek", "Industrie"),
    ("Machinebouw", "Industrie"), ("Metaal", "Industrie"), ("Kunststoffen", "Industrie"),
    ("Verpakkingen", "Industrie"), ("Logistiek", "Transport & logistiek"),
    ("Transport", "Transport & logistiek"), ("Expeditie", "Transport & logistiek"),
    ("ICT", "ICT"), ("Automatisering", "ICT"), ("Software", "ICT"), ("Data", "ICT"),
    ("Advies", "Zakelijke dienstverlening"), ("Consultancy", "Zakelijke dienstverlening"),
    ("Accountants", "Financiële dienstverlening"), ("Administratie", "Financiële dienstverlening"),
    ("Makelaardij", "Vastgoed"), ("Vastgoed", "Vastgoed"), ("Zorg", "Zorg"),
    ("Thuiszorg", "Zorg"), ("Groothandel", "Groothandel"), ("Handelsonderneming", "Groothandel"),
    ("Food", "Voedingsmiddelen"), ("Bakkerijen", "Voedingsmiddelen"), ("Catering", "Horeca"),
    ("Hotels", "Horeca"), ("Energie", "Energie"), ("Solar", "Energie"),
    ("Personeelsdiensten", "Uitzendbranche"), ("Opleidingen", "Onderwijs"),
    ("Drukwerk", "Media & communicatie"), ("Media", "Media & communicatie"),
    ("Schoonmaak", "Facilitaire diensten"), ("Beveiliging", "Facilitaire diensten"),
    ("Tuin & Groen", "Agri & hoveniers"), ("Agro", "Agri & hoveniers"),
    ("Interieurbouw", "Bouw"), ("Keukens", "Retail"), ("Mode", "Retail"),
)

PLACES = {
    "NL": (
        "Amsterdam", "Rotterdam", "Utrecht", "Eindhoven", "Groningen", "Zwolle", "Tilburg",
        "Breda", "Nijmegen", "Arnhem", "Enschede", "Leeuwarden", "Maastricht", "Den Bosch",
        "Haarlem", "Amersfoort", "Apeldoorn", "Almere", "Delft", "Leiden", "Deventer", "Venlo",
        "Helmond", "Assen", "Emmen", "Alkmaar", "Hengelo", "Roermond", "Gouda", "Dordrecht",
    ),
    "BE": (
        "Antwerpen", "Gent", "Brugge", "Leuven", "Hasselt", "Mechelen", "Kortrijk", "Aalst",
        "Genk", "Turnhout",
    ),
    "DE": ("Düsseldorf", "Köln", "Aachen", "Münster", "Kleve", "Duisburg"),
}
LEGAL_FORMS = {
    "NL": ("B.V.", "B.V.", "B.V.", "Groep B.V.", "V.O.F."),
    "BE": ("BV", "NV", "BV"),
    "DE": ("GmbH", "GmbH", "KG"),
}
TLD = {"NL": ".nl", "BE": ".be", "DE": ".de"}

FREEMAIL_DOMAINS = (
    "gmail.com", "gmail.com", "gmail.com", "hotmail.com", "hotmail.nl", "hotmail.nl",
    "outlook.com", "live.nl", "ziggo.nl", "kpnmail.nl", "planet.nl", "home.nl", "xs4all.nl",
    "telenet.be", "skynet.be", "hotmail.be", "icloud.com", "yahoo.com", "proton.me",
)
# Business-looking domains of contacts that are not linked to a company record.
LOOSE_DOMAINS = (
    "zzp-advies.nl", "bureaudekker.nl", "mijnwebshop.nl", "klusbedrijf-online.nl",
    "freelance-ict.be", "studio-noord.nl", "praktijkvoorbeeld.nl", "handelshuis-oost.nl",
)

JOB_TITLES = (
    "Directeur", "Eigenaar", "Algemeen directeur", "CEO", "CFO", "Financieel manager",
    "Inkoper", "Hoofd inkoop", "Operationeel manager", "IT-manager", "Office manager",
    "Marketingmanager", "Salesmanager", "HR-manager", "Projectleider", "Bedrijfsleider",
    "Controller", "Administrateur", "Teamleider", "Business developer", "Commercieel directeur",
    "Managing director", "Head of Operations", "Planner", "Eigenaar, directeur",
)

LOST_REASONS = (
    "Te duur", "Geen budget", "Gekozen voor concurrent", "Geen reactie meer",
    "Timing: volgend jaar", "Geen fit met behoefte", "Interne oplossing", "Project uitgesteld",
    "Te duur; andere prioriteiten",
)

CAMPAIGN_BY_EVENT = {
    "newsletter_signup": "Nieuwsbrief",
    "linkedin_follow": "LinkedIn bedrijfspagina",
    "content_download": "Whitepaper Grip op je salesfunnel",
    "webinar_registration": "Webinar Slimmer verkopen",
    "webinar_attended": "Webinar Slimmer verkopen",
    "event_visit": "Vakbeurs Sales & Marketing",
    "chat_conversation": "Website chat",
    "contact_form": "Website contact",
    "demo_request": "Demo aanvragen",
    "pricing_request": "Prijzen pagina",
    "trial_signup": "Gratis proefperiode",
}
CHANNELS = ("website", "email", "linkedin", "google_ads", "event", "organic", "referral")
# fmt: on


def slug(text: str) -> str:
    """Lower-case ASCII letters and digits only: 'Van 't Hof' → 'vanthof', 'Öztürk' → 'ozturk'."""
    text = text.replace("ı", "i").replace("ø", "o").replace("Ø", "o").replace("&", "en")
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in ascii_text.lower() if ch.isalnum())
