#!/usr/bin/python3
"""Training data and the before/after sheet of CelGAN's bundled style (used by tools/train-bundled.sh).

  train-data.py prepare OUTDIR   photos/ and styles/ under OUTDIR from Debian packages' images (licenses below)
  train-data.py sheet OUT.png BEFORE AFTER [BEFORE AFTER ...]   a before/after contact sheet

Only images whose licenses allow it, all from Debian packages (see data/README.md):
- photos: python3-skimage's sample photos (public domain per skimage.data's docstrings), mate-backgrounds'
  nature photos (GPL-2+), renpy-demo's photo backgrounds (Expat);
- styles: renpy-thequestion's and renpy-demo's anime backgrounds, CG and character sprites (Expat; sprites are
  flattened on white, the panorama is cut into frames).
The photos of data/samples (chelsea, coffee) are held out: the sheet shows the style on photos it never saw.
"""
import os
import sys

from PIL import Image

SKIMAGE = "/usr/lib/python3/dist-packages/skimage/data"
RENPY_Q = "/usr/share/games/renpy/the_question/game/images"
RENPY_D = "/usr/share/games/renpy/demo/game/images"
MATE = "/usr/share/backgrounds/mate/nature"

# (source, license) of every training image; the names are stable so that a run is reproducible.
PHOTOS = (
    [(f"{SKIMAGE}/{n}", "public domain (scikit-image sample data)") for n in ("astronaut.png", "rocket.jpg")] +
    [(f"{MATE}/{n}", "GPL-2+ (mate-backgrounds)") for n in
     ("Aqua.jpg", "Blinds.jpg", "Dune.jpg", "FreshFlower.jpg", "Garden.jpg", "GreenMeadow.jpg", "LadyBird.jpg",
      "RainDrops.jpg", "Storm.jpg", "TwoWings.jpg", "Wood.jpg", "YellowFlower.jpg")] +
    [(f"{RENPY_D}/{n}", "Expat (renpy-demo)") for n in ("bg washington.jpg", "bg whitehouse.jpg", "bg cave.jpg")]
)
STYLES = (
    [(f"{RENPY_Q}/{n}", "Expat (renpy-thequestion)") for n in
     ("bg club.jpg", "bg lecturehall.jpg", "bg meadow.jpg", "bg uni.jpg", "sylvie blue normal.png",
      "sylvie blue smile.png", "sylvie green normal.png", "sylvie green giggle.png")] +
    [(f"{RENPY_D}/{n}", "Expat (renpy-demo)") for n in
     ("bg panorama.webp", "concert1.png", "concert2.png", "concert3.png", "eileen happy.png",
      "eileen concerned.png", "lucy happy.png", "lucy mad.png")]
)


def flat_rgb (im):
    """RGB; images with alpha are composited on white (the sprites' transparent surround)."""
    if im.mode in ("RGBA", "LA", "P"):
        im = im.convert("RGBA")
        bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
        return Image.alpha_composite(bg, im).convert("RGB")
    return im.convert("RGB")


def prepare (outdir):
    for sub, items in (("photos", PHOTOS), ("styles", STYLES)):
        d = os.path.join(outdir, sub)
        os.makedirs(d, exist_ok=True)
        for path, _license in items:
            if not os.path.exists(path):
                sys.exit(f"train-data: missing {path} (is its Debian package installed?)")
            im = flat_rgb(Image.open(path))
            base = os.path.splitext(os.path.basename(path))[0].replace(" ", "-")
            if im.width > 2 * im.height:  # the panorama: frames of the game's aspect
                step = im.height * 16 // 9
                frames = [(f"{base}-{i}", im.crop((x, 0, x + step, im.height)))
                          for i, x in enumerate(range(0, im.width - step + 1, step))]
            else:
                frames = [(base, im)]
            for name, fr in frames:
                # Keep crops meaningful: the longer side at most 640 (crops of the 5640-wide
                # wallpapers would be almost flat texture).
                scale = 640 / max(fr.size)
                if scale < 1:
                    fr = fr.resize((round(fr.width * scale), round(fr.height * scale)), Image.LANCZOS)
                fr.save(os.path.join(d, name + ".png"))
    print(f"train-data: {len(PHOTOS)} photos, {len(STYLES)} style images under {outdir}")


def sheet (out, pairs):
    rows = []
    for before, after in zip(pairs[0::2], pairs[1::2]):
        a, b = flat_rgb(Image.open(before)), flat_rgb(Image.open(after))
        h = 300
        a = a.resize((round(a.width * h / a.height), h), Image.LANCZOS)
        b = b.resize((round(b.width * h / b.height), h), Image.LANCZOS)
        rows.append((a, b))
    w = max(a.width + b.width for a, b in rows) + 30
    img = Image.new("RGB", (w, len(rows) * 310 + 10), "white")
    y = 10
    for a, b in rows:
        img.paste(a, (10, y))
        img.paste(b, (20 + a.width, y))
        y += 310
    img.save(out)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "prepare":
        prepare(sys.argv[2])
    elif len(sys.argv) >= 5 and sys.argv[1] == "sheet" and len(sys.argv) % 2 == 1:
        sheet(sys.argv[2], sys.argv[3:])
    else:
        sys.exit(__doc__)
